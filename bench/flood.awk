# flood.awk - medians over -count runs of BenchmarkFlood's metrics.
#
# Reads `go test -bench Flood` output; prints per flood kind the median of
# kept-% (and untracked-%: flows never tracked, their set full), the spoofed packet's ns and x floor, and a legitimate new flow's
# ns alone and amid the flood with their ratio (new-flow capacity under
# flood / without), and the run count. Load median.awk first.
/^BenchmarkFlood/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	sub(/^BenchmarkFlood\//, "", name)
	if (!(name in runs))
		order[++count] = name
	runs[name]++
	for (i = 3; i < NF; i += 2)
		m[name, $(i + 1)] = m[name, $(i + 1)] " " $i
}
END {
	printf "%-6s %8s %11s %14s %10s %12s %16s %16s %5s\n", "flood", "kept %", "untracked %", "spoofed ns", "x floor", "new flow ns", "amid flood ns", "capacity ratio", "runs"
	for (k = 1; k <= count; k++) {
		n = order[k]
		printf "%-6s %8.2f %11.2f %14.0f %10.2f %12.0f %16.0f %16.2f %5d\n", n,
			median(m[n, "kept-%"]), median(m[n, "untracked-%"]), median(m[n, "flood-ns/pkt"]), median(m[n, "flood-x-floor"]),
			median(m[n, "newflow-ns"]), median(m[n, "newflow-flood-ns"]),
			median(m[n, "newflow-capacity-ratio"]), runs[n]
	}
}
