#!/usr/bin/env bash
# soak.sh - run randomized frames (valid, truncated, corrupted, to VIPs and
# elsewhere, tunnelled, tagged, garbage) through the real XDP program
# (TestSoak, bench/soak_test.go): every verdict counted, no frame to a
# non-VIP, non-node destination modified, no kernel warning. CI runs the
# test with 100,000 frames; this runs 10,000,000 (or the count given).
# Needs root. Usage: bench/soak.sh [frames]
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
AIRD_SOAK_PACKETS=${1:-10000000} AIRD_TEST_PRIVILEGED=1 \
	go test ./bench/ -run '^TestSoak$' -count 1 -v -timeout 180m | grep -v '^=== RUN'
