#!/usr/bin/env bash
# aird's whole test suite: installs its dependencies, checks that the
# committed BPF objects match their C sources, vets, runs every test (the
# privileged ones need root; with AIRD_TEST_PRIVILEGED=1 they fail instead of
# skipping) and runs each fuzz target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

bash integration/deps.sh test
echo "== go vet"
go vet ./...
echo "== BPF objects match their C sources"
bash bpf/check-generated.sh
echo "== go test"
go test -count=1 -timeout 60m ./...
echo "== fuzzing (bounded)"
fuzz_time=${AIRD_FUZZ_TIME:-30s}
go test ./internal/config/ -run '^$' -fuzz '^FuzzParse$' -fuzztime "$fuzz_time"
go test ./bpf/ -run '^$' -fuzz '^FuzzXDP$' -fuzztime "$fuzz_time"
