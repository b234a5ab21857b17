package integration

import (
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

// TestEndpointContainerSide: what docs/operator-guide.md ("Endpoints")
// says aird sets up for a container: eth0 with its addresses as /128 and
// /32, default routes via fe80::1 and 169.254.1.1 with permanent neighbour
// entries for both, --vip addresses on lo, transmit checksumming off and
// GRO on, TSO off while the endpoint program runs (GSO stays on); on the
// host a proto 203 route per address on the air… link.
func TestEndpointContainerSide(t *testing.T) {
	n := endpointNode(t)
	n.start()
	const vip = "fd00:300::10"
	ns, ep := n.addContainer("web-1", "--vip", vip)
	v6, v4 := addrOf(t, ep, "ipv6"), addrOf(t, ep, "ipv4")

	in := func(cmd string, args ...string) string { return testutil.NetnsExec(t, ns, cmd, args...) }
	expect := func(what, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in:\n%s", what, w, out)
			}
		}
	}
	expect("container addresses", in("ip", "-o", "addr", "show", "dev", "eth0"), v6.String()+"/128", v4.String()+"/32")
	expect("container IPv6 default route", in("ip", "-6", "route", "show", "default"), "default via fe80::1 dev eth0")
	expect("container IPv4 default route", in("ip", "-4", "route", "show", "default"), "default via 169.254.1.1 dev eth0")
	expect("container IPv6 gateway neighbour", in("ip", "-6", "neigh", "show", "fe80::1", "dev", "eth0"), "PERMANENT")
	expect("container IPv4 gateway neighbour", in("ip", "-4", "neigh", "show", "169.254.1.1", "dev", "eth0"), "PERMANENT")
	expect("VIP on the container's lo", in("ip", "-o", "addr", "show", "dev", "lo"), vip+"/128")
	testutil.RequireCommand(t, "ethtool")
	feats := in("ethtool", "-k", "eth0")
	expect("eth0 offloads", feats, "tx-checksumming: off", "generic-receive-offload: on", "tcp-segmentation-offload: off", "generic-segmentation-offload: on")

	host := testutil.NetnsExec(t, n.ns, "ip", "-6", "route", "show", "proto", "203")
	expect("host route of the IPv6 address", host, v6.String()+" dev "+ep.Interface)
	host4 := testutil.NetnsExec(t, n.ns, "ip", "-4", "route", "show", "proto", "203")
	expect("host route of the IPv4 address", host4, v4.String()+" dev "+ep.Interface)
	if !strings.HasPrefix(ep.Interface, "air") {
		t.Errorf("host side %q is not an air… link", ep.Interface)
	}
}
