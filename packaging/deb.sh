#!/usr/bin/env bash
# Builds aird's Debian package with nfpm (a Go tool of this module: no Ruby,
# no FPM): static binaries stamped with the git version, man pages and
# shell completions generated from the binaries, aird.toml(5) from
# docs/configuration.md. Usage: packaging/deb.sh [OUTDIR] (default dist/);
# prints the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}

VERSION=$(bash packaging/version.sh go)
DEB_VERSION=$(bash packaging/version.sh deb)
REVISION=$(bash packaging/version.sh rev)
ARCH=$(go env GOARCH)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
export SOURCE_DATE_EPOCH

pkg=github.com/aird-net/aird/internal/version
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $pkg.version=$VERSION -X $pkg.revision=$REVISION" \
	-o "$STAGE/" ./cmd/aird ./cmd/airctl
"$STAGE/aird" --gen-docs "$STAGE/docs" --gen-docs-config-reference docs/configuration.md
"$STAGE/airctl" gen-docs "$STAGE/docs"
gzip -9n "$STAGE"/docs/man/man*/*

mkdir -p "$out"
deb="$out/aird_${DEB_VERSION}_${ARCH}.deb"
rm -f "$deb"
# nfpm expands no variables in file paths: fill them in.
sed -e "s|\${STAGE}|$STAGE|g" -e "s|\${ARCH}|$ARCH|g" -e "s|\${DEB_VERSION}|$DEB_VERSION|g" \
	packaging/deb/nfpm.yaml >"$STAGE/nfpm.yaml"
go tool nfpm package --config "$STAGE/nfpm.yaml" --packager deb --target "$deb" >&2
echo "$deb"
