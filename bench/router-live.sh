#!/bin/sh
# Live router benchmark (docs/performance.md): packets per second from an
# outside generator to a container through a node, aird's XDP router
# against the kernel's forwarding of the same traffic, in the same run.
# Needs root and two CPUs.
#
#   bench/router-live.sh                 # 5 rounds of 2,000,000 frames each way
#   AIRD_BENCH_ROUNDS=9 bench/router-live.sh
set -eu
cd "$(dirname "$0")/.."
LOG=${LOG:-/tmp/aird-router-live.log}
rc=0
AIRD_BENCH=1 AIRD_TEST_PRIVILEGED=1 go test ./integration/ -run '^TestBenchRouterLive$' -count=1 -timeout 30m -v >"$LOG" 2>&1 || rc=$?
grep '^BENCH' "$LOG" | sed 's/^BENCH //' || true
if [ "$rc" -ne 0 ]; then
	echo "benchmark failed (exit $rc); see $LOG" >&2
	grep -E -- '--- FAIL|\.go:[0-9]+:' "$LOG" | tail -20 >&2
fi
exit "$rc"
