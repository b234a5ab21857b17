#!/usr/bin/env bash
# check-generated.sh - fail when the committed bpf2go output is stale.
#
# Regenerates bpf/ and bench/ (the benchmarks' programs) twice: the two runs must be byte-identical (reproducible
# generation), and the result must match what git has (no diff, no new
# untracked files under bpf/). Needs clang-14 and llvm-strip-14. Run from
# anywhere inside the repository; CI calls it.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"

sums() {
	find bpf bench -type f \( -name '*.go' -o -name '*.o' \) -print0 | sort -z | xargs -0 sha256sum
}

go generate ./bpf/... ./bench/...
first=$(sums)
go generate ./bpf/... ./bench/...
second=$(sums)
if [[ "$first" != "$second" ]]; then
	echo "check-generated: go generate ./bpf/... ./bench/... is not reproducible:" >&2
	diff <(echo "$first") <(echo "$second") >&2 || true
	exit 1
fi

status=0
if ! git diff --exit-code --stat -- bpf/ bench/; then
	echo "check-generated: generated files in bpf/ or bench/ differ from the commit; run 'go generate ./bpf/... ./bench/...' and commit the result" >&2
	status=1
fi
untracked=$(git ls-files --others --exclude-standard -- bpf/ bench/)
if [[ -n "$untracked" ]]; then
	echo "check-generated: untracked files in bpf/ or bench/ after generation (commit them or fix the generator):" >&2
	echo "$untracked" >&2
	status=1
fi
exit "$status"
