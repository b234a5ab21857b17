#!/usr/bin/env bash
# daemon.sh - the real aird at scale (docs/performance.md), needs root:
# BenchmarkDaemonScale with AIRD_BENCH_VIPS services (default 10,000) of
# AIRD_BENCH_PER_VIP backends (100) drawn from AIRD_BENCH_POOL addresses
# (2,000): time and CPU from exec to READY=1 cold and after a restart that
# adopts the pins, RSS (and its peak during the start), locked memory of every map and Maglev table, and a
# reload of one service (twice: moved and back) and of one weight in every service, what a
# /metrics scrape allocates in aird, and `airctl lb services`; then the
# same services split into 100 files included from services.d (split-*):
# READY cold and on a restart, a reload that changes one service (one file
# rewritten; twice: right after the start, and again). COUNT runs
# (default 3), each printed; the figures vary with other load on the
# machine (wall time more than CPU time). AIRD_BENCH_LAYOUT=single|split
# runs one layout (starts: the one-file cold start and restart alone);
# AIRD_BENCH_PROFILE=DIR has each aird write a CPU profile;
# AIRD_BENCH_AIRD=PATH runs that aird binary (an older build) instead;
# AIRD_BENCH_LAYOUT=restarts: one cold start, then AIRD_BENCH_RESTARTS
# restarts (3) of each binary AIRD_BENCH_AIRD lists (comma-separated),
# alternating: READY, CPU, page faults and peak RSS at READY.
#
# Usage: bench/daemon.sh [count]
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
count=${1:-3}
AIRD_TEST_PRIVILEGED=1 go test ./bench/ -run '^$' -bench '^BenchmarkDaemonScale$' -benchtime 1x -count "$count" -timeout 120m |
	grep '^BenchmarkDaemonScale' | tr '\t' '\n' | sed -e 's/^ *//' | grep -v '^$'
