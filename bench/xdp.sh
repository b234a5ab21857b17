#!/usr/bin/env bash
# xdp.sh - the XDP data-plane benchmark: aird_xdp in multiples of the floor
# program (MAC swap + XDP_TX), measured with BPF_PROG_TEST_RUN.
#
# With 1, 100, 1,000 and 10,000 VIPs configured (100 backends behind one
# shared Maglev table) it measures a 74-byte IPv6 TCP packet of an
# established flow (conntrack hit) and of a new flow's SYN (the Maglev
# table decides, nothing is written) to one VIP, the same spread
# round-robin over all VIPs, a new flow's handshake ACK and a first UDP
# datagram (conntrack miss + insert), and ACKs of new flows on all CPUs at
# once.
# Every number is the median over COUNT runs (default 5) of the 10 %
# trimmed mean of the kernel-reported time per packet; "x floor" is the
# ratio to the floor, measured alternately in the same run. The growth with
# the VIP count comes from BenchmarkVIPGrowth, which measures the 1, 100,
# 1,000 and 10,000-VIP data planes interleaved in one run (the per-count
# rows above run one after the other, so machine load drifts between
# them). See docs/performance.md. Needs root.
#
# Usage: bench/xdp.sh [count]
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
count=${1:-5}
AIRD_TEST_PRIVILEGED=1 go test ./bench/ -run '^$' -bench 'Established|NewFlow' -benchtime 20000x -count "$count" -timeout 60m |
	awk -f bench/median.awk -f bench/summarize.awk
echo
echo "growth with the VIP count (interleaved; median over $count runs, and the range):"
AIRD_TEST_PRIVILEGED=1 go test ./bench/ -run '^$' -bench VIPGrowth -benchtime 20000x -count "$count" -timeout 60m |
	awk -f bench/median.awk -f bench/growth.awk
