# packet.awk - medians over -count runs of BenchmarkPacket's metrics.
#
# Per case and method: aird's ns/pkt, the MAC-swap and IP6IP6 floors' ns,
# and aird in multiples of each floor (steady state: net of the harness,
# whose own ns are shown too, and the IPv6 floor's ratio with the harness
# in both, "gross"). Load median.awk first.
/^BenchmarkPacket\// {
	name = $1
	sub(/^BenchmarkPacket\//, "", name)
	sub(/-[0-9]+$/, "", name)
	if (!(name in runs))
		order[++count] = name
	runs[name]++
	for (i = 3; i < NF; i += 2) {
		m = $(i + 1)
		if (m == "ns/pkt" || m == "mac-floor-ns" || m == "ip6ip6-floor-ns" || m == "x-mac-floor" || m == "x-ip6ip6-floor" || m == "harness-ns" || m == "x-ip6ip6-floor-gross")
			v[name, m] = v[name, m] " " $i
	}
}
END {
	printf "%-34s %8s %9s %9s %8s %8s %8s %8s %5s\n", "case/method", "aird ns", "mac floor", "ip6ip6 fl", "x mac", "x ip6ip6", "harness", "x gross", "runs"
	for (k = 1; k <= count; k++) {
		n = order[k]
		h = ((n, "harness-ns") in v) ? sprintf("%8.1f", median(v[n, "harness-ns"])) : sprintf("%8s", "-")
		g = ((n, "x-ip6ip6-floor-gross") in v) ? sprintf("%8.2f", median(v[n, "x-ip6ip6-floor-gross"])) : sprintf("%8s", "-")
		printf "%-34s %8.1f %9.1f %9.1f %8.2f %8.2f %s %s %5d\n", n, median(v[n, "ns/pkt"]), median(v[n, "mac-floor-ns"]),
			median(v[n, "ip6ip6-floor-ns"]), median(v[n, "x-mac-floor"]), median(v[n, "x-ip6ip6-floor"]), h, g, runs[n]
	}
}
