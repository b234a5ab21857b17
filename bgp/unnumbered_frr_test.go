package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// frrUnnumberedConf is an FRR switch peering by interface (it learns the
// node's link-local address from the node's Router Advertisements) and
// announcing an IPv6 and an IPv4 prefix.
func frrUnnumberedConf(tor torSpec) string {
	d := tor.Dev
	return fmt.Sprintf(`frr defaults datacenter
hostname %s
route-map ALLOW permit 10
router bgp %d
 bgp router-id 10.255.0.%d
 no bgp default ipv4-unicast
 no bgp network import-check
 timers bgp 3 9
 neighbor %s interface remote-as external
 neighbor %s timers connect 1
 address-family ipv6 unicast
  network fd00:99::/64
  neighbor %s activate
  neighbor %s route-map ALLOW in
  neighbor %s route-map ALLOW out
 exit-address-family
 address-family ipv4 unicast
  network 10.99.0.0/24
  neighbor %s activate
  neighbor %s route-map ALLOW in
  neighbor %s route-map ALLOW out
 exit-address-family
`, tor.Name, frrAS, tor.Index, d, d, d, d, d, d, d, d)
}

// unnumberedTOML peers with the switch on the node's end of the link,
// with no address anywhere.
func unnumberedTOML(l labSpec, asn uint32, peerAS string, imports string) string {
	return fmt.Sprintf(`[node]
name = "node1"
router-id = "10.255.255.1"
underlay = ["fd00:ff::1"]
[bgp]
asn = %d
connect-retry = "1s"
[[bgp.peers]]
name = "tor1"
interface = %q
asn = %s
[bgp.peers.import]
prefixes = [%s]
`, asn, l.Tors[0].NodeDev, peerAS, imports)
}

// frrSessionUp reports FRR's state of its interface peer.
func frrSessionUp(t *testing.T, tor torSpec) (bool, string) {
	out := tor.frr().MustVtysh(t, "show bgp neighbors "+tor.Dev+" json")
	return strings.Contains(out, `"bgpState":"Established"`), out
}

// Unnumbered peering with FRR (`neighbor IFACE interface`): the node finds
// the switch's link-local address, the switch learns the node's from its
// RAs; the session comes up with no address configured on either side.
// The node's IPv6 prefix and an IPv4 /32 (RFC 8950) reach FRR's RIB and
// kernel via the node's link-local address; FRR's prefixes reach the
// node's FIB via the switch's. The link going down and up replaces the
// session.
func TestFRRUnnumbered(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.startFRR(t, l.linkUnnumbered(t, "tor1"), frrUnnumberedConf)
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		torLL := netip.MustParseAddr(tor.Addr).WithZone(tor.NodeDev)
		sp := startSpeaker(t, l, unnumberedTOML(l, frrNodeAS, `"external"`, `"fd00:99::/64", "10.99.0.0/24"`), []Route{
			{Prefix: netip.MustParsePrefix("fd00:200:1::/64")},
			{Prefix: netip.MustParsePrefix("10.200.0.1/32")},
		})
		var n Neighbor
		took := eventually(t, 30*time.Second, "unnumbered session established", func() (bool, string) {
			n = neighborNamed(sp, "tor1")
			return n.State == "established", fmt.Sprintf("%+v", n)
		})
		t.Logf("unnumbered session established %s after Start: %s, peer AS %d", took.Round(time.Millisecond), n.Address, n.PeerASN)
		if n.Address != torLL || n.Interface != tor.NodeDev || n.PeerASN != frrAS {
			t.Errorf("neighbor %+v: want address %s on %s, AS %d", n, torLL, tor.NodeDev, frrAS)
		}
		eventually(t, 10*time.Second, "FRR sees the session established", func() (bool, string) { return frrSessionUp(t, tor) })

		nodeLL := tor.NodeAddr
		eventually(t, 10*time.Second, "FRR's RIB has both prefixes from the node", func() (bool, string) {
			r6 := tor.frr().MustVtysh(t, "show bgp ipv6 unicast fd00:200:1::/64 json")
			r4 := tor.frr().MustVtysh(t, "show bgp ipv4 unicast 10.200.0.1/32 json")
			return strings.Contains(r6, nodeLL) && strings.Contains(r4, nodeLL), r6 + "\n" + r4
		})
		routesInFRRKernel := func() (bool, string) {
			r6 := ip(t, "-n", tor.NS, "-6", "route", "show", "fd00:200:1::/64")
			r4 := ip(t, "-n", tor.NS, "-4", "route", "show", "10.200.0.1/32")
			return strings.Contains(r6, "via "+nodeLL+" dev "+tor.Dev) && strings.Contains(r6, "proto bgp") &&
				strings.Contains(r4, "via inet6 "+nodeLL+" dev "+tor.Dev), r6 + r4
		}
		eventually(t, 10*time.Second, "FRR's kernel has both prefixes via the node's link-local address", routesInFRRKernel)
		_, fib := routesInFRRKernel()
		t.Logf("FRR's kernel:\n%s", fib)

		routesInNodeFIB := func() (bool, string) {
			r6, r4 := fibRoutesOf(t, l, "-6"), fibRoutesOf(t, l, "-4")
			return strings.Contains(r6, "fd00:99::/64 via "+tor.Addr+" dev "+tor.NodeDev) &&
				strings.Contains(r4, "10.99.0.0/24 via inet6 "+tor.Addr+" dev "+tor.NodeDev), r6 + r4
		}
		eventually(t, 10*time.Second, "the node's FIB has FRR's prefixes via the switch's link-local address", routesInNodeFIB)
		eventually(t, 10*time.Second, "both of FRR's prefixes counted as accepted", func() (bool, string) {
			n = neighborNamed(sp, "tor1")
			return n.Accepted == 2 && n.Received >= 2 && n.Advertised == 2, fmt.Sprintf("%+v", n)
		})
		learned, err := sp.Routes(RouteQuery{Peer: n.Address})
		if err != nil || len(learned) != 2 || !learned[0].Installed || !learned[1].Installed {
			t.Errorf("Routes(tor1) = %+v, %v; want 2, installed", learned, err)
		}

		// Link down and up (on the switch's side): the neighbour is
		// deleted, then found and added again.
		ip(t, "-n", tor.NS, "link", "set", tor.Dev, "down")
		down := time.Now()
		eventually(t, 5*time.Second, "the peer is lost", func() (bool, string) {
			n = neighborNamed(sp, "tor1")
			return !n.Address.IsValid() && n.State != "established", fmt.Sprintf("%+v", n)
		})
		t.Logf("peer lost %s after the link went down: %s", time.Since(down).Round(time.Millisecond), n.LastError)
		eventually(t, 5*time.Second, "the node's FIB loses FRR's prefixes", func() (bool, string) {
			fib := fibRoutesOf(t, l, "-6") + fibRoutesOf(t, l, "-4")
			return strings.TrimSpace(fib) == "", fib
		})
		ip(t, "-n", tor.NS, "link", "set", tor.Dev, "up")
		up := time.Now()
		took = eventually(t, 30*time.Second, "the session is back", func() (bool, string) {
			n = neighborNamed(sp, "tor1")
			return n.State == "established", fmt.Sprintf("%+v", n)
		})
		t.Logf("session re-established %s after the link came up", took.Round(time.Millisecond))
		if n.Address != torLL {
			t.Errorf("after the flap the peer is %s, want %s", n.Address, torLL)
		}
		eventually(t, 15*time.Second, "FRR's kernel has the node's prefixes again", routesInFRRKernel)
		eventually(t, 10*time.Second, "the node's FIB has FRR's prefixes again", routesInNodeFIB)
		t.Logf("routes back in both FIBs %s after the link came up", time.Since(up).Round(time.Millisecond))
		if rt, _ := sp.run.tracker.byKey("interface:" + tor.NodeDev); rt.flaps != 1 {
			t.Errorf("flaps = %d, want 1", rt.flaps)
		}
	})
}
