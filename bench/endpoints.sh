#!/bin/sh
# Endpoints at scale through the real daemon (docs/performance.md): N
# containers (default 1000) added over the API one after the other - the
# latency of each add - then aird restarted (SIGUSR2) and killed (kill -9)
# with N endpoints: time from exec to READY=1; aird's RSS. Needs root.
#
#   bench/endpoints.sh            # N = 1000
#   AIRD_BENCH_N=200 bench/endpoints.sh
set -eu
cd "$(dirname "$0")/.."
LOG=${LOG:-/tmp/aird-endpoints-bench.log}
rc=0
AIRD_BENCH=1 AIRD_TEST_PRIVILEGED=1 go test ./integration/ -run '^TestBenchEndpoints$' -count=1 -timeout 60m -v >"$LOG" 2>&1 || rc=$?
grep '^BENCH' "$LOG" | sed 's/^BENCH //' || true
if [ "$rc" -ne 0 ]; then
	echo "benchmark failed (exit $rc); see $LOG" >&2
	grep -E -- '--- FAIL|\.go:[0-9]+:' "$LOG" | tail -20 >&2
fi
exit "$rc"
