#!/usr/bin/env bash
# ct-layouts.sh - measure the conntrack layouts the datapath can be built
# with (bpf/lb_maps.h CT_LAYOUT) on the established and new-flow paths.
#
#   0  LRU_HASH, common LRU
#   1  LRU_HASH with BPF_F_NO_COMMON_LRU (per-CPU LRU lists, shared table)
#   2  ARRAY_OF_MAPS of per-CPU LRU_HASH maps indexed by CPU (Katran)
#   3  ARRAY of 4-way sets, one partition per CPU (aird's choice)
#
# Each layout's object is compiled into a temporary directory and loaded by
# the benchmarks through AIRD_BENCH_OBJECT. Every layout follows the same
# policy (CT_POLICY, default: a flow is inserted at its first non-SYN
# packet), so NewFlowACK, NewFlowUDP and NewFlowParallel measure the
# insert, NewFlow a SYN's lookup. Needs root, clang-14.
# Usage: bench/ct-layouts.sh [count]   (default 7 runs per benchmark)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
count=${1:-7}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
names=("common LRU" "no-common LRU" "per-CPU LRU maps" "per-CPU 4-way sets")
for layout in 0 1 2 3; do
	clang-14 -O2 -g -Wall -Werror -nostdinc -I./bpf/include -target bpfel \
		-DCT_LAYOUT="$layout" -c bpf/xdp.c -o "$tmp/ct$layout.o"
done
for layout in 0 1 2 3; do
	echo "== CT_LAYOUT=$layout (${names[$layout]})"
	AIRD_BENCH_OBJECT="$tmp/ct$layout.o" AIRD_TEST_PRIVILEGED=1 \
		bash -c "go test ./bench/ -run '^$' -bench '(Established|NewFlow)/vips=1\$' -benchtime 20000x -count $count &&
			go test ./bench/ -run '^$' -bench 'NewFlowACK|NewFlowUDP|NewFlowParallel' -benchtime 20000x -count $count" |
		awk -f bench/median.awk -f bench/summarize.awk
done
