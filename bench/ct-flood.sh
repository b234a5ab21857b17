#!/usr/bin/env bash
# ct-flood.sh - measure the conntrack policies (bpf/lb_maps.h CT_POLICY)
# under floods of spoofed packets: BenchmarkFlood (bench/flood_test.go)
# against each build.
#
#   0  LRU: a SYN (or a miss) writes an entry over the set's least recently
#      seen one (aird before issue 11)
#   1  a SYN writes a new entry; new entries never replace established ones
#   2  no entry for a SYN; the first non-SYN packet writes a new entry; new
#      entries never replace established ones (aird's choice)
#
# Reports, per policy and flood kind (syn, ack): the established flows that
# kept their backend (kept-%), the cost of a spoofed packet, and the cost
# of a legitimate new flow (SYN + ACK) alone and amid the flood.
# Needs root, clang-14. Usage: bench/ct-flood.sh [count] [size]
# (count: runs per policy, default 3; size: AIRD_BENCH_FLOOD_SIZE, default 1
# = 100,000 established flows and 1,000,000 spoofed packets per flood)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
count=${1:-3}
export AIRD_BENCH_FLOOD_SIZE=${2:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
names=("LRU (before)" "SYN creates a new entry" "first ACK creates a new entry (chosen)")
for p in 0 1 2; do
	clang-14 -O2 -g -Wall -Werror -nostdinc -I./bpf/include -target bpfel \
		-DCT_POLICY="$p" -c bpf/xdp.c -o "$tmp/ct$p.o"
done
for p in 0 1 2; do
	echo "== CT_POLICY=$p (${names[$p]})"
	AIRD_BENCH_OBJECT="$tmp/ct$p.o" AIRD_TEST_PRIVILEGED=1 \
		go test ./bench/ -run '^$' -bench 'Flood' -benchtime 1x -count "$count" -timeout 60m |
		awk -f bench/median.awk -f bench/flood.awk
done
