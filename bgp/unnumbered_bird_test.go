package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Unnumbered peering with BIRD, which is configured with the node's
// link-local address and sends no RAs: the node finds BIRD from its
// neighbour solicitations. BIRD holds the node's IPv6 and IPv4 (RFC 8950)
// prefixes with the node's link-local next hop, and so does its kernel.
func TestBIRDUnnumbered(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.startBIRD(t, l.linkUnnumbered(t, "tor1"), birdConf(birdOpts{nodeAS: 65001, unnumbered: true}))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		sp := startSpeaker(t, l, unnumberedTOML(l, 65001, "65101", ""), []Route{
			{Prefix: netip.MustParsePrefix("fd00:200:1::/64")},
			{Prefix: netip.MustParsePrefix("10.200.0.1/32")},
		})
		var n Neighbor
		took := eventually(t, 30*time.Second, "unnumbered session with BIRD established", func() (bool, string) {
			n = neighborNamed(sp, "tor1")
			return n.State == "established", fmt.Sprintf("%+v", n)
		})
		t.Logf("session established %s after Start, with %s", took.Round(time.Millisecond), n.Address)
		if want := netip.MustParseAddr(tor.Addr).WithZone(tor.NodeDev); n.Address != want {
			t.Errorf("peer address %s, want %s", n.Address, want)
		}
		eventually(t, 10*time.Second, "BIRD has both prefixes with the node's link-local next hop", func() (bool, string) {
			r6, r4 := birdRoute(t, tor, "fd00:200:1::/64"), birdRoute(t, tor, "10.200.0.1/32")
			return strings.Contains(r6, tor.NodeAddr) && strings.Contains(r4, tor.NodeAddr), r6 + r4
		})
		var fib string
		eventually(t, 10*time.Second, "BIRD's kernel has both prefixes", func() (bool, string) {
			r6 := ip(t, "-n", tor.NS, "-6", "route", "show", "fd00:200:1::/64")
			r4 := ip(t, "-n", tor.NS, "-4", "route", "show", "10.200.0.1/32")
			fib = r6 + r4
			return strings.Contains(r6, "via "+tor.NodeAddr+" dev "+tor.Dev) &&
				strings.Contains(r4, "via inet6 "+tor.NodeAddr+" dev "+tor.Dev), fib
		})
		t.Logf("BIRD's kernel:\n%s", fib)
	})
}
