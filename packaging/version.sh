#!/usr/bin/env bash
# Prints the version of the tree, from git:
#   packaging/version.sh go     v0.1.0, v0.1.0-3-g1a2b3c4d5e6f, or
#                               v0.0.0-20261126013448-0e9eb36af58c (no tag yet);
#                               "-dirty" appended for uncommitted changes
#   packaging/version.sh deb    the same as a Debian version: 0.1.0,
#                               0.1.0+git3.1a2b3c4d5e6f, 0.0.0~git20261126013448.0e9eb36af58c
#                               ("+dirty" appended)
#   packaging/version.sh rev    the full commit id
# Outside a git checkout: "devel" (go), 0.0.0~devel (deb), nothing (rev).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-go}

if ! git rev-parse --git-dir >/dev/null 2>&1; then
	case $what in
	go) echo devel ;;
	deb) echo 0.0.0~devel ;;
	esac
	exit 0
fi
rev=$(git rev-parse HEAD)
short=${rev:0:12}
dirty=
git diff --quiet HEAD -- 2>/dev/null || dirty=1
if desc=$(git describe --tags --match 'v[0-9]*' --abbrev=12 2>/dev/null); then
	gov=$desc
	if [[ $desc =~ ^v(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		debv="${BASH_REMATCH[1]}+git${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
	else
		debv=${desc#v}
	fi
else
	date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
	gov="v0.0.0-$date-$short"
	debv="0.0.0~git$date.$short"
fi
case $what in
go) echo "$gov${dirty:+-dirty}" ;;
deb) echo "$debv${dirty:++dirty}" ;;
rev) echo "$rev" ;;
*) echo "usage: $0 go|deb|rev" >&2; exit 2 ;;
esac
