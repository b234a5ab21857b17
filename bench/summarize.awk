# summarize.awk - median over -count runs of each benchmark's metrics.
#
# Reads `go test -bench` output; for every benchmark prints the medians of
# ns/pkt, floor-ns/pkt and x-floor over its runs, and the run count.
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	if (!(name in runs))
		order[++count] = name
	runs[name]++
	for (i = 3; i < NF; i += 2) {
		if ($(i + 1) == "ns/pkt") lb[name] = lb[name] " " $i
		if ($(i + 1) == "floor-ns/pkt") fl[name] = fl[name] " " $i
		if ($(i + 1) == "x-floor") x[name] = x[name] " " $i
	}
}
END {
	printf "%-40s %10s %12s %8s %5s\n", "benchmark", "ns/pkt", "floor ns/pkt", "x floor", "runs"
	for (k = 1; k <= count; k++) {
		n = order[k]
		printf "%-40s %10.0f %12.0f %8.2f %5d\n", n, median(lb[n]), median(fl[n]), median(x[n]), runs[n]
	}
}
