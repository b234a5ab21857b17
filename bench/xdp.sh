#!/usr/bin/env bash
# xdp.sh - the XDP data-plane benchmark: aird_xdp in multiples of the floor
# program (MAC swap + XDP_TX), measured with BPF_PROG_TEST_RUN.
#
# With 1, 100, 1,000 and 10,000 VIPs configured (100 backends behind one
# shared Maglev table) it measures a 74-byte IPv6 TCP packet of an
# established flow (conntrack hit) and of a new flow (SYN: conntrack insert)
# to one VIP, the same spread round-robin over all VIPs, a first UDP
# datagram (conntrack miss + insert) and new flows on all CPUs at once.
# Every number is the median over COUNT runs (default 5) of the median
# kernel-reported time per packet; "x floor" is the ratio to the floor,
# measured alternately in the same run. Growth is that of "x floor" over
# the 1-VIP case. See docs/performance.md. Needs root.
#
# Usage: bench/xdp.sh [count]
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
count=${1:-5}
summary=$(AIRD_TEST_PRIVILEGED=1 go test ./bench/ -run '^$' -bench . -benchtime 20000x -count "$count" -timeout 60m |
	awk -f bench/summarize.awk)
echo "$summary"
echo
echo "growth of x floor over vips=1:"
echo "$summary" | awk '
	$1 ~ /\/vips=/ {
		split($1, p, "/")
		if (p[2] == "vips=1") base[p[1]] = $4
		else if (base[p[1]]) printf "  %-40s %+6.1f%%\n", $1, ($4 / base[p[1]] - 1) * 100
	}'
