#!/usr/bin/env bash
# The aird demo: the rack in one command (integration/lab). It installs
# what it needs, builds aird, airctl and airdlab into ./bin, and runs
# `airdlab demo`: two ToRs (FRR, BIRD), two aird load-balancer nodes and
# two aird backend nodes with container endpoints, in network namespaces;
# real HTTP, TCP and UDP traffic from a client to the VIPs; the BGP
# sessions and ECMP routes on both ToRs; requests per backend; airctl lb
# stats from both LB nodes. Then it removes everything - or, with KEEP=1,
# leaves the lab running and prints how to look around and how to stop it
# (make demo-down). Run as root: make demo [KEEP=1]
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces, loads XDP programs, runs BGP daemons)" >&2; exit 1; }
bash integration/deps.sh demo

echo "== building aird, airctl and airdlab into ./bin"
make --no-print-directory build
go build -o bin/ ./integration/lab/cmd/airdlab

args=()
[ "${KEEP:-}" = 1 ] && args+=(-keep)
exec bin/airdlab demo "${args[@]}"
