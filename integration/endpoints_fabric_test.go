package integration

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// fabric is two aird nodes behind one BIRD ToR, and a client behind the
// ToR:
//
//	client c0 fd00:1::2 ── t0 fd00:1::1 [ToR: BIRD, AS 65100] ta fd00:100:1::2 ── uplink0 fd00:100:1::1 [node A, AS 65001, pods fd00:200:1::/64]
//	                                                          tb fd00:100:2::2 ── uplink0 fd00:100:2::1 [node B, AS 65002, pods fd00:200:2::/64]
//
// The nodes advertise their pod prefixes to the ToR, which passes each to
// the other node; aird installs them (ECMP-capable) in the node's FIB.
type fabric struct {
	client, tor string
	bird        *testutil.BIRD
	a, b        *node
}

const fabricBIRD = `
router id 10.255.0.254;
protocol device { scan time 1; }
protocol kernel kernel6 { ipv6 { import none; export all; }; merge paths on; }
template bgp node {
  local as 65100;
  hold time 9; keepalive time 3;
  connect retry time 1; error wait time 1, 5;
  ipv6 { import all; export all; };
}
protocol bgp a from node { neighbor fd00:100:1::1 as 65001; }
protocol bgp b from node { neighbor fd00:100:2::1 as 65002; }
`

func newFabric(t *testing.T) *fabric {
	t.Helper()
	f := &fabric{client: testutil.NewNetns(t, "airdfc-"), tor: testutil.NewNetns(t, "airdft-")}
	f.a = newAirdIn(t, testutil.NewNetns(t, "airdfa-"))
	f.b = newAirdIn(t, testutil.NewNetns(t, "airdfb-"))
	testutil.Run(t, "ip", "link", "add", "c0", "netns", f.client, "type", "veth", "peer", "name", "t0", "netns", f.tor)
	testutil.Run(t, "ip", "link", "add", "uplink0", "netns", f.a.ns, "type", "veth", "peer", "name", "ta", "netns", f.tor)
	testutil.Run(t, "ip", "link", "add", "uplink0", "netns", f.b.ns, "type", "veth", "peer", "name", "tb", "netns", f.tor)
	for _, l := range []struct{ ns, dev, addr string }{
		{f.client, "c0", "fd00:1::2/64"}, {f.tor, "t0", "fd00:1::1/64"},
		{f.a.ns, "uplink0", "fd00:100:1::1/64"}, {f.tor, "ta", "fd00:100:1::2/64"},
		{f.b.ns, "uplink0", "fd00:100:2::1/64"}, {f.tor, "tb", "fd00:100:2::2/64"},
	} {
		testutil.Addr(t, l.ns, l.dev, l.addr)
		testutil.Run(t, "ip", "-n", l.ns, "link", "set", l.dev, "up")
	}
	testutil.NetnsExec(t, f.tor, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	for _, r := range []struct{ ns, via string }{{f.client, "fd00:1::1"}, {f.a.ns, "fd00:100:1::2"}, {f.b.ns, "fd00:100:2::2"}} {
		testutil.Run(t, "ip", "-n", r.ns, "-6", "route", "add", "default", "via", r.via)
	}
	// The ToR receives frames the nodes' XDP redirects (GRO gives its
	// veths NAPI); the client sends complete checksums, and so do the
	// nodes' uplinks: a tunnelled health probe leaves with its inner
	// checksum pending for the NIC, which a veth hands on unfinished, and
	// the backend node's XDP delivers it to the pod as a raw frame.
	testutil.RequireCommand(t, "ethtool")
	testutil.NetnsExec(t, f.a.ns, "ethtool", "-K", "uplink0", "tx", "off")
	testutil.NetnsExec(t, f.b.ns, "ethtool", "-K", "uplink0", "tx", "off")
	testutil.NetnsExec(t, f.tor, "ethtool", "-K", "ta", "gro", "on")
	testutil.NetnsExec(t, f.tor, "ethtool", "-K", "tb", "gro", "on")
	testutil.NetnsExec(t, f.client, "ethtool", "-K", "c0", "tx", "off")
	testutil.WaitIPv6Ready(t, f.client, f.tor, f.a.ns, f.b.ns)
	f.bird = testutil.StartBIRD(t, f.tor, fabricBIRD)
	return f
}

// nodeConfig is a fabric node's configuration: BGP to the ToR importing
// the other nodes' pod /64s, its own pod prefix, and extra tables. Node A
// load-balances from fabricLBSource, behind the ToR: the other nodes'
// tunnel sources name it.
func (f *fabric) nodeConfig(n *node, name string, asn, idx int, extra string) string {
	return fmt.Sprintf(`[node]
name = %q
router-id = "10.255.0.%d"
underlay = ["fd00:100:%d::1"]
uplinks = ["uplink0"]
[datapath]
pin-path = %q
tunnel-sources = [%q]
[api]
socket = %q
[log]
level = "debug"
[bgp]
asn = %d
connect-retry = "1s"
[[bgp.peers]]
name = "tor"
address = "fd00:100:%d::2"
asn = 65100
families = ["ipv6"]
[bgp.peers.import]
prefixes = ["fd00:200::/40 ge 64 le 64", "fd00:210::/48 ge 128 le 128"]
[ipam]
pod-prefixes = ["fd00:200:%d::/64"]
[[ipam.pools]]
name = "pods"
kind = "pod"
prefixes = ["fd00:200::/40"]
%s`, name, idx, idx, n.pinPath, fabricLBSource, n.socket, asn, idx, idx, extra)
}

// fabricLBSource is node A's lb.encap-source-prefix.
const fabricLBSource = "fd00:100:1::1:0/112"

// waitRoute waits until ns's kernel has a route to prefix.
func waitRoute(t *testing.T, ns, prefix string) {
	t.Helper()
	if !testutil.WaitFor(20*time.Second, func() bool { return torHas(t, ns, prefix) }) {
		t.Fatalf("no route to %s in %s:\n%s", prefix, ns, testutil.Run(t, "ip", "-n", ns, "-6", "route"))
	}
}

// TestEndpointsAcrossNodes: pods on two nodes talk over TCP through the
// ToR (each node learned the other's pod prefix over BGP), a pod reaches
// the outside and back, a VIP load-balanced on node A is served by pods on
// node B with direct server return, and an unallocated pod address is
// unreachable instead of looping.
func TestEndpointsAcrossNodes(t *testing.T) {
	f := newFabric(t)
	const vip = "fd00:300::10"
	f.b.writeConfig(f.nodeConfig(f.b, "b", 65002, 2, `[[ipam.pools]]
name = "vms"
kind = "vm"
prefixes = ["fd00:210::/64"]
`))
	f.b.start()
	bns1, b1 := f.b.addContainer("b1", "--vip", vip)
	bns2, b2 := f.b.addContainer("b2", "--vip", vip)
	nameServer(t, bns1, "b1")
	nameServer(t, bns2, "b2")

	f.a.writeConfig(f.nodeConfig(f.a, "a", 65001, 1, fmt.Sprintf(`[[ipam.pools]]
name = "services"
kind = "service"
prefixes = ["fd00:300::/112"]
[lb]
encap-source-prefix = %q
[[services]]
name = "web"
vip = %q
port = 8080
backends = [{ address = %q }, { address = %q }]
[services.health-check]
type = "tcp"
interval = "300ms"
timeout = "250ms"
rise = 1
fall = 3
`, fabricLBSource, vip, b1.Addresses[0], b2.Addresses[0])))
	f.a.start()
	ans, a1 := f.a.addContainer("a1")
	nameServer(t, ans, "a1")
	stopClient := nameServer(t, f.client, "client")
	defer stopClient()

	waitRoute(t, f.tor, "fd00:200:1::/64")
	waitRoute(t, f.tor, "fd00:200:2::/64")
	waitRoute(t, f.a.ns, "fd00:200:2::/64")
	waitRoute(t, f.b.ns, "fd00:200:1::/64")

	ask := func(what, from string, to netip.Addr, want ...string) string {
		t.Helper()
		var who string
		var err error
		ok := testutil.WaitFor(10*time.Second, func() bool {
			who, err = dialName(t, from, to)
			return err == nil
		})
		if !ok || (len(want) > 0 && !strings.Contains(strings.Join(want, " "), who)) {
			t.Fatalf("%s: %s -> %s: %q, %v (want %v)", what, from, to, who, err, want)
		}
		return who
	}
	ask("pod to pod across nodes", ans, b1.Addresses[0], "b1")
	ask("pod to pod across nodes, back", bns2, a1.Addresses[0], "a1")
	ask("outside to a pod", f.client, a1.Addresses[0], "a1")
	ask("pod to the outside", ans, netip.MustParseAddr("fd00:1::2"), "client")

	// The VIP: balanced on A in XDP, encapsulated to the pods on B,
	// decapsulated by B's XDP for them, answered straight to the client.
	waitRoute(t, f.tor, vip)
	seen := map[string]int{}
	for i := 0; i < 40; i++ {
		var who string
		var err error
		testutil.WaitFor(5*time.Second, func() bool {
			who, err = dialName(t, f.client, netip.MustParseAddr(vip))
			return err == nil
		})
		if err != nil {
			t.Fatalf("connection %d to the VIP: %v", i, err)
		}
		seen[who]++
	}
	if seen["b1"] == 0 || seen["b2"] == 0 || len(seen) != 2 {
		t.Fatalf("40 connections to the VIP reached %v, want both b1 and b2", seen)
	}
	for _, name := range []string{"b1", "b2"} {
		if ep := f.b.endpoint(name); ep.Counters.RxPackets == 0 || ep.Counters.DropDecap != 0 {
			t.Fatalf("%s after VIP traffic: %+v", name, ep.Counters)
		}
	}

	// A VM's address comes from a pool that spans nodes: its node
	// announces it as a host route while the endpoint exists.
	testutil.Run(t, "ip", "-n", f.b.ns, "tuntap", "add", "dev", "tapvm0", "mode", "tap")
	if out, errs, code := f.b.airctl("endpoint", "add", "vm1", "--tap", "tapvm0"); code != 0 {
		t.Fatalf("endpoint add --tap: %s%s", out, errs)
	}
	vmAddr := f.b.endpoint("vm1").Addresses[0].String()
	waitRoute(t, f.tor, vmAddr)
	if out := testutil.Run(t, "ip", "-n", f.tor, "-6", "route", "show", vmAddr); !strings.Contains(out, "via fd00:100:2::1") {
		t.Fatalf("the ToR routes the VM %s elsewhere: %s", vmAddr, out)
	}
	if _, errs, code := f.b.airctl("endpoint", "del", "vm1"); code != 0 {
		t.Fatalf("endpoint del: %s", errs)
	}
	if !testutil.WaitFor(10*time.Second, func() bool { return !torHas(t, f.tor, vmAddr) }) {
		t.Fatalf("the VM's host route stayed at the ToR after the endpoint was deleted")
	}

	// An address of B's pod prefix that no endpoint holds: the node
	// answers unreachable, nothing loops back to the ToR.
	out, _ := exec.Command("ip", "netns", "exec", f.client, "ping", "-6", "-c", "1", "-W", "2", "fd00:200:2::99").CombinedOutput()
	if !strings.Contains(string(out), "nreachable") {
		t.Fatalf("ping to an unallocated pod address:\n%s", out)
	}
}
