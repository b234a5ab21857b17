#!/usr/bin/env bash
# The aird demo: builds aird and airctl, starts aird in a network namespace
# whose uplink is a veth to a client namespace, sends IPv6 and IPv4 traffic
# through the XDP pipeline, shows a rejected and an accepted reload, prints
# `airctl status`, and cleans everything up. Run as root: make demo
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces and loads XDP programs)" >&2; exit 1; }
bash integration/deps.sh demo

node=aird-demo-node client=aird-demo-client
work=$(mktemp -d /tmp/aird-demo.XXXXXX)
aird_pid=

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
airctl() { "$root/bin/airctl" --socket /run/aird-demo/aird.sock "$@"; }
cleanup() {
	set +e
	[ -n "$aird_pid" ] && kill -TERM "$aird_pid" 2>/dev/null && wait "$aird_pid" 2>/dev/null
	"$root/bin/aird" --cleanup --config "$work/aird.toml" >/dev/null 2>&1
	ip netns del "$node" 2>/dev/null
	ip netns del "$client" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

say "building aird and airctl into ./bin"
make --no-print-directory build

say "network: $client (fd00:100:1::2, 10.100.1.2) <-veth-> $node uplink0 (fd00:100:1::1, 10.100.1.1)"
for ns in "$node" "$client"; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add uplink0 netns "$node" type veth peer name eth0 netns "$client"
ip -n "$node" addr add fd00:100:1::1/64 dev uplink0 nodad
ip -n "$node" addr add 10.100.1.1/24 dev uplink0
ip -n "$client" addr add fd00:100:1::2/64 dev eth0 nodad
ip -n "$client" addr add 10.100.1.2/24 dev eth0
ip -n "$node" link set uplink0 up
ip -n "$client" link set eth0 up

cp configs/demo.toml "$work/aird.toml"
say "checking the configuration: bin/aird --check-config"
bin/aird --check-config "$work/aird.toml"

say "starting aird in $node"
# nsenter switches only the network namespace, so aird sees the host's bpffs
# at /sys/fs/bpf (ip netns exec would remount /sys and hide it).
nsenter --net=/run/netns/"$node" bin/aird --config "$work/aird.toml" >"$work/aird.log" 2>&1 &
aird_pid=$!
for _ in $(seq 50); do airctl status >/dev/null 2>&1 && break; sleep 0.2; done
airctl status >/dev/null || { cat "$work/aird.log"; exit 1; }

say "traffic from $client through the XDP pipeline on uplink0"
ip netns exec "$client" ping -6 -c 3 -i 0.2 -q fd00:100:1::1
ip netns exec "$client" ping -4 -c 2 -i 0.2 -q 10.100.1.1

say "a reload with a mistyped key is rejected; the running configuration stays"
sed -i 's/^level = "info"/Level = "debug"/' "$work/aird.toml"
airctl reload || echo "(airctl reload exited $? as it should)"

say "fixed and reloaded"
sed -i 's/^Level = "debug"/level = "debug"/' "$work/aird.toml"
airctl reload

say "airctl status"
airctl status

say "Prometheus metrics (excerpt)"
ip netns exec "$node" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9469; printf "GET /metrics HTTP/1.0\r\n\r\n" >&3; cat <&3' |
	grep -E '^aird_(xdp|config|build)' || true

say "aird's log"
cat "$work/aird.log"
say "done: stopping aird and removing the namespaces"
