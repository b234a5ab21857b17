#!/usr/bin/env bash
# Installs what aird's demo and tests need on Debian 12, and mounts bpffs.
# Usage: integration/deps.sh demo|test   (run as root; idempotent)
set -euo pipefail
what=${1:-test}

# The demo's rack: FRR and BIRD are its ToRs; ethtool, nsenter (util-linux)
# and sysctl (procps) set up its namespaces.
pkgs=(iproute2 iputils-ping bird2 frr ethtool procps util-linux)
if [ "$what" = test ]; then
	# clang/llvm/libbpf-dev regenerate the BPF objects (CI checks they match);
	# bird2 and frr are the switches BGP tests peer with; debootstrap and
	# systemd-container boot a real systemd for the unit test; man-db formats
	# the packaged man pages.
	pkgs+=(clang-14 llvm-14 libbpf-dev bpftool bird2 frr debootstrap systemd-container ethtool procps util-linux
		nftables tcpdump iperf3 curl man-db)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "deps: Go 1.26 is required (https://go.dev/dl/), found none on PATH" >&2; exit 1; }

# systemd mounts bpffs at boot; a bare machine or container may not have it.
if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
	mount -t bpf bpf /sys/fs/bpf
fi
