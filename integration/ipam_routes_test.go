package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

// TestPodPrefixUnreachable checks that the unallocated rest of a pod prefix
// is an unreachable route: with a default route back to the switch, a ping
// from the switch side to a pod address nobody holds gets an ICMP
// unreachable instead of looping. A reload that drops a pod prefix removes
// its route, and aird --cleanup removes the rest.
func TestPodPrefixUnreachable(t *testing.T) {
	n := newNode(t)
	// The node's default route points at the switch (eth0 side), as one
	// learned over BGP would; the switch routes the pod prefixes to the
	// node.
	testutil.Run(t, "ip", "-n", n.ns, "-6", "route", "add", "default", "via", "fd00:100:1::2")
	testutil.Run(t, "ip", "-n", n.ns, "route", "add", "default", "via", "10.100.1.2")
	testutil.Run(t, "ip", "-n", n.peerNS, "-6", "route", "add", "fd00:10:0:1::/64", "via", "fd00:100:1::1")
	testutil.Run(t, "ip", "-n", n.peerNS, "route", "add", "10.10.1.0/24", "via", "10.100.1.1")
	n.writeConfig(n.config("info", "uplink0") + ipamTOML)
	n.start()
	testutil.WaitIPv6Ready(t, n.ns, n.peerNS)

	routes := podRoutesIn(t, n.ns)
	if !strings.Contains(routes, "unreachable fd00:10:0:1::/64") || !strings.Contains(routes, "unreachable 10.10.1.0/24") {
		t.Fatalf("pod prefix routes (proto 202) in the node:\n%s", routes)
	}
	for _, c := range []struct{ fam, addr, want string }{
		{"-6", "fd00:10:0:1::99", "From fd00:100:1::1 icmp_seq=1 Destination unreachable: No route"},
		{"-4", "10.10.1.99", "From 10.100.1.1 icmp_seq=1 Destination Host Unreachable"},
	} {
		out, _ := exec.Command("ip", "netns", "exec", n.peerNS, "ping", c.fam, "-c", "1", "-W", "2", c.addr).CombinedOutput()
		if !strings.Contains(string(out), c.want) {
			t.Fatalf("ping %s from the switch side: want %q (an ICMP error from the node, not a loop):\n%s", c.addr, c.want, out)
		}
	}

	n.writeConfig(n.config("info", "uplink0") + strings.Replace(ipamTOML, `, "10.10.1.0/24"]`, `]`, 1))
	if _, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload: %s", errs)
	}
	routes = podRoutesIn(t, n.ns)
	if strings.Contains(routes, "10.10.1.0/24") || !strings.Contains(routes, "unreachable fd00:10:0:1::/64") {
		t.Fatalf("after dropping the IPv4 pod prefix:\n%s", routes)
	}
	n.stop()
	if routes := podRoutesIn(t, n.ns); !strings.Contains(routes, "fd00:10:0:1::/64") {
		t.Fatalf("a stop removed the pod prefix route (it stays until --cleanup, like the data plane):\n%s", routes)
	}
	out := testutil.Run(t, "nsenter", "--net=/run/netns/"+n.ns, n.aird, "--cleanup", "--config", n.cfgPath)
	if routes := podRoutesIn(t, n.ns); routes != "" || !strings.Contains(out, "removed 1 pod prefix route") {
		t.Fatalf("after aird --cleanup (%s) routes remain:\n%s", out, routes)
	}
}

func podRoutesIn(t *testing.T, ns string) string {
	t.Helper()
	v6 := testutil.Run(t, "ip", "-n", ns, "-6", "route", "show", "table", "main", "proto", "202")
	v4 := testutil.Run(t, "ip", "-n", ns, "-4", "route", "show", "table", "main", "proto", "202")
	return strings.TrimSpace(v6 + v4)
}
