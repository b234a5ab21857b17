#!/bin/sh
# Live load-balancer benchmark (docs/performance.md): 64-byte UDP frames
# from a generator to a VIP through an LB node to two backends - aird with
# 1, 1,000 and 10,000 VIPs configured through the daemon (and a second
# 1-VIP node, aird-1b, the identical-node control), nftables DNAT
# (numgen), an XDP floor (EtherType check, MAC rewrite, redirect), the
# same without the check (floor-blind), an encapsulating floor (plus an
# IPv6-in-IPv6 header) and a floor as slow as aird (floor-slow),
# established and new flows, interleaved in the same run; every node's
# output bytes are checked first. Needs root and two CPUs.
#
#   bench/lb-live.sh                     # 5 rounds of 2,000,000 frames per window
#   AIRD_BENCH_ROUNDS=9 bench/lb-live.sh
#   AIRD_BENCH_CHAINS=floor,aird-1 bench/lb-live.sh   # some nodes only
#   AIRD_BENCH_PROG_STATS=1 bench/lb-live.sh   # also every XDP program's own ns/run
#   AIRD_BENCH_PERF=/tmp/perf bench/lb-live.sh # and the LB's CPU time split by perf
#                                              (needs perf: apt-get install linux-perf)
set -eu
cd "$(dirname "$0")/.."
LOG=${LOG:-/tmp/aird-lb-live.log}
rc=0
AIRD_BENCH=1 AIRD_TEST_PRIVILEGED=1 go test ./integration/ -run '^TestBenchLBLive$' -count=1 -timeout 30m -v >"$LOG" 2>&1 || rc=$?
grep '^BENCH' "$LOG" | sed 's/^BENCH //' || true
if [ "$rc" -ne 0 ]; then
	echo "benchmark failed (exit $rc); see $LOG" >&2
	grep -E -- '--- FAIL|\.go:[0-9]+:' "$LOG" | tail -20 >&2
fi
exit "$rc"
