#!/usr/bin/env bash
# xdp.sh - the XDP data-plane benchmarks (docs/performance.md), needs root.
#
# 1. BenchmarkPacket, the per-packet benchmark of record: aird_xdp (one VIP,
#    100 backends, programmed by lb.Manager) against two floors measured
#    in the same run - MAC swap and a minimal IPv6-in-IPv6 encapsulation -
#    single-shot (repeat 1) and steady state (repeat 1,000 through a
#    restore harness, its fixed cost subtracted), for an established flow
#    and a new flow with conntrack empty and full, the uplink listed as a
#    NIC (one-cpu), and a new flow's SYN and first ACK with it listed as a
#    veth (any-cpu: the cross-CPU conntrack steps run). Output bytes of
#    every measured run are checked.
# 2. The single-shot set per VIP count (1 to 10,000 VIPs): an established
#    flow, a new flow's SYN (the Maglev table decides, nothing is written)
#    and its handshake ACK (conntrack insert), spread over all VIPs, a first
#    UDP datagram, ACKs of new flows on both CPUs at once.
# 3. Growth with the VIP count, measured interleaved.
# Every number is the median over COUNT runs (default 5).
#
# Usage: bench/xdp.sh [count]
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
count=${1:-5}
echo "per packet (BenchmarkPacket; ns are kernel-reported per packet):"
AIRD_TEST_PRIVILEGED=1 go test ./bench/ -run '^$' -bench '^BenchmarkPacket$' -benchtime 2000x -count "$count" -timeout 60m |
	awk -f bench/median.awk -f bench/packet.awk
echo
AIRD_TEST_PRIVILEGED=1 go test ./bench/ -run '^$' -bench 'Established|NewFlow' -benchtime 20000x -count "$count" -timeout 60m |
	awk -f bench/median.awk -f bench/summarize.awk
echo
echo "growth with the VIP count (interleaved; median over $count runs, and the range):"
AIRD_TEST_PRIVILEGED=1 go test ./bench/ -run '^$' -bench VIPGrowth -benchtime 20000x -count "$count" -timeout 60m |
	awk -f bench/median.awk -f bench/growth.awk
