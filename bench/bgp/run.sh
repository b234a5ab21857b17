#!/bin/sh
# BGP convergence benchmark (docs/performance-bgp.md): time until a BIRD
# receiver holds N advertised prefixes, BIRD->BIRD against aird->BIRD in
# the same run, and aird's RSS. Needs root, ip(8), bird and birdc (bird2).
# Everything runs in network namespaces the test creates and removes.
#
#   bench/bgp/run.sh                      # N = 10000,100000, 3 runs each
#   bench/bgp/run.sh learn                # learned routes into the FIB and
#                                         # withdrawn: BIRD or aird receiving
#                                         # from one BIRD sender
#   AIRD_BENCH_N=10000 AIRD_BENCH_RUNS=5 bench/bgp/run.sh
#   AIRD_BENCH_CPUPROFILE=/tmp/prof bench/bgp/run.sh   # pprof per aird run (learn: per phase)
#   AIRD_BENCH_HEAPPROFILE=/tmp/prof bench/bgp/run.sh  # heap profile per aird run (learn: also at the start and
#                                         # end of each phase, for pprof -diff_base)
#   AIRD_BENCH_TRACE=/tmp/prof bench/bgp/run.sh        # execution trace per aird run (learn: per phase)
#   AIRD_BENCH_CONNECT=sender bench/bgp/run.sh   # senders connect (default: receiver)
#   AIRD_BENCH_SETTLE=0 bench/bgp/run.sh          # skip the RSS reading 20 s later
#   AIRD_BENCH_TIMELINE=1 bench/bgp/run.sh        # receiver's route count over time (learn: both phases, the FIB,
#                                         # aird's accepted count and GoBGP's Adj-RIB-In; =100ms sets the period)
#   AIRD_BENCH_WAKE_SENDER=1 bench/bgp/run.sh     # poke the BIRD sender (see the test)
#   AIRD_BENCH_PEERS=2 bench/bgp/run.sh           # aird sends to 2 receivers (memory per session)
#
# The full log goes to ${LOG:-/tmp/aird-bgp-bench.log}.
set -eu
cd "$(dirname "$0")/../.."
LOG=${LOG:-/tmp/aird-bgp-bench.log}
BIN=$(mktemp /tmp/aird-bgp-bench.XXXXXX)
trap 'rm -f "$BIN"' EXIT
go test -c -o "$BIN" ./bgp
for d in "${AIRD_BENCH_CPUPROFILE:-}" "${AIRD_BENCH_HEAPPROFILE:-}" "${AIRD_BENCH_TRACE:-}"; do
	if [ -n "$d" ]; then mkdir -p "$d"; fi
done
# Run from bgp/ as go test would.
rc=0
test=TestBenchConvergence
if [ "${1:-}" = learn ]; then
	test=TestBenchLearn
fi
(cd bgp && AIRD_BENCH=1 "$BIN" -test.run "^$test\$" -test.v -test.count=1 -test.timeout 60m) >"$LOG" 2>&1 || rc=$?
grep '^BENCH' "$LOG" | sed 's/^BENCH \{0,1\}//' || true
if [ "$rc" -ne 0 ]; then
	echo "benchmark failed (exit $rc); see $LOG" >&2
	grep -E -- '--- FAIL|\.go:[0-9]+:' "$LOG" | tail -20 >&2
fi
exit "$rc"
