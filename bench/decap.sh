#!/usr/bin/env bash
# decap.sh - what the decap stage's checks cost (docs/performance.md,
# "Decapsulation"): BenchmarkDecap against
#
#   checks   the datapath as built (tunnel source: LPM trie; inner
#            destination: local_addrs, node_addrs, endpoints hash maps)
#   fib      the same with -DDECAP_INNER_FIB: the inner destination is
#            checked with bpf_fib_lookup instead of the address maps
#   open     the object of the commit before the checks existed (the
#            parent of the one that added DROP_TUNNEL_SOURCE), which
#            decapsulates every tunnel packet to the node
#
# Needs root and clang-14. Usage: bench/decap.sh [count]   (default 5)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
count=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cflags=(-O2 -g -Wall -Werror -nostdinc -target bpfel)
clang-14 "${cflags[@]}" -I./bpf/include -DDECAP_INNER_FIB -c bpf/xdp.c -o "$tmp/fib.o"
mkdir "$tmp/open"
added=$(git log -1 --format=%H -S DROP_TUNNEL_SOURCE -- bpf/pipeline.h)
git archive "$added^" bpf | tar -x -C "$tmp/open"
clang-14 "${cflags[@]}" -I"$tmp/open/bpf/include" -c "$tmp/open/bpf/xdp.c" -o "$tmp/open.o"
run() {
	AIRD_TEST_PRIVILEGED=1 go test ./bench/ -run '^$' -bench "$1" -benchtime 20000x -count "$count" |
		awk -f bench/median.awk -f bench/summarize.awk
}
echo "== checks (as built)"
run 'Decap'
echo "== fib (-DDECAP_INNER_FIB)"
AIRD_BENCH_OBJECT="$tmp/fib.o" run 'Decap'
echo "== open (${added:0:7}^, no checks)"
AIRD_BENCH_OBJECT="$tmp/open.o" run 'Decap/accepted$'
