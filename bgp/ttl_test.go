package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// enforcer says which side must keep the session down in staysDown.
type enforcer int

const (
	bothSides  enforcer = iota // neither side may see it established
	nodeSide                   // the node may not; the switch may
	switchSide                 // the switch may not; the node may
)

// staysDown checks for d that the side(s) that enforce the hop limits
// never see the session established, and that the switch never gets the
// node's route. GTSM's minimum hop limit is set on an accepted connection
// only after accepting it, by GoBGP as by BIRD, so the first packets of a
// peer without GTSM can pass: that peer may then see its side reach
// Established until the other's hold timer resets the connection, and no
// route passes.
func staysDown(t *testing.T, sp *Speaker, tor torSpec, addr string, d time.Duration, who enforcer, why string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if n := neighbor(sp, addr); who != switchSide && n.State == "established" {
			t.Fatalf("%s: the session came up: %+v", why, n)
		}
		if out := tor.bird().MustCmd(t, "show", "protocols", "node1"); who != nodeSide && strings.Contains(out, "Established") {
			t.Fatalf("%s: BIRD has the session established:\n%s", why, out)
		}
		if out := birdRoute(t, tor, "fd00:200:1::/64"); strings.Contains(out, "node1") {
			t.Fatalf("%s: BIRD got the node's route:\n%s", why, out)
		}
	}
	n := neighbor(sp, addr)
	t.Logf("%s: no route passed in %s; the node's side is %s", why, d, n.State)
}

// birdHasRoute waits until BIRD holds prefix from the node.
func birdHasRoute(t *testing.T, tor torSpec, prefix string) {
	t.Helper()
	eventually(t, 10*time.Second, "BIRD has "+prefix, func() (bool, string) {
		out := birdRoute(t, tor, prefix)
		return strings.Contains(out, "node1"), out
	})
}

// A switch two hops away, behind a router: with multihop = 2 the session
// comes up and carries routes; without it GoBGP sends with hop limit 1,
// which the router does not forward, and the session never comes up.
func TestBIRDMultihop(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		// node ── router ── switch: the router's link to the node is
		// fd00:100:1::/64, its link to the switch fd00:101::/64.
		r := l.link(t, "router")
		sw := testutil.NewNetns(t, "bgpt-")
		rDev, swDev := testutil.UniqueName("vr"), testutil.UniqueName("vs")
		testutil.Veth(t, rDev, r.NS, swDev, sw)
		testutil.Addr(t, r.NS, rDev, "fd00:101::1/64")
		testutil.Addr(t, sw, swDev, "fd00:101::2/64")
		testutil.NetnsExec(t, r.NS, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
		testutil.Run(t, "ip", "-n", l.spec.Node, "-6", "route", "add", "fd00:101::/64", "via", r.Addr)
		testutil.Run(t, "ip", "-n", sw, "-6", "route", "add", "fd00:100:1::/64", "via", "fd00:101::1")
		tor := torSpec{Name: "tor1", NS: sw, Index: 1, Addr: "fd00:101::2", NodeAddr: r.NodeAddr, Dev: swDev, NodeDev: r.NodeDev}
		l.startBIRD(t, tor, birdConf(birdOpts{nodeAS: 65001, extra: "multihop 2;"}))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		sp := startSpeaker(t, l, tor1TOML(l, tor.Addr, ""), []Route{{Prefix: netip.MustParsePrefix("fd00:200:1::/64")}})
		staysDown(t, sp, tor, tor.Addr, 6*time.Second, bothSides, "two hops away without multihop")

		c := parseConfig(t, tor1TOML(l, tor.Addr, "multihop = 2"))
		if err := sp.Apply(c.BGP, c.Node); err != nil {
			t.Fatal(err)
		}
		waitEstablished(t, sp, tor.Addr, 15*time.Second)
		birdHasRoute(t, tor, "fd00:200:1::/64")
	})
}

// gtsmTOML peers with both switches, with ttl-security as given.
func gtsmTOML(l labSpec, on bool) string {
	s := nodeTOML(l) + "[bgp]\nasn = 65001\nconnect-retry = \"1s\"\n"
	for _, tor := range l.Tors {
		s += fmt.Sprintf("[[bgp.peers]]\nname = %q\naddress = %q\nasn = %d\nttl-security = %t\n",
			tor.Name, tor.Addr, 65100+tor.Index, on)
	}
	return s
}

// GTSM (RFC 5082) against two BIRD switches, tor1 with `ttl security on`
// and tor2 without. With ttl-security on the node, the session with tor1
// comes up and the node never establishes the one with tor2: it drops
// tor2's packets, sent with hop limit 1. With it off, the reverse: tor1
// drops the node's and never establishes. No route passes where GTSM is
// on one side only.
func TestBIRDTTLSecurity(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001, extra: "ttl security on;"}))
		l.addBIRD(t, "tor2", birdConf(birdOpts{nodeAS: 65001, recursiveVia: "fd00:100:1::2/128"})) // the underlay is on tor1's link
	}, func(t *testing.T, l labSpec) {
		tor1, tor2 := l.Tors[0], l.Tors[1]
		sp := startSpeaker(t, l, gtsmTOML(l, true), []Route{{Prefix: netip.MustParsePrefix("fd00:200:1::/64")}})
		waitEstablished(t, sp, tor1.Addr, 15*time.Second)
		birdHasRoute(t, tor1, "fd00:200:1::/64")
		staysDown(t, sp, tor2, tor2.Addr, 12*time.Second, nodeSide, "GTSM on the node only")

		c := parseConfig(t, gtsmTOML(l, false))
		if err := sp.Apply(c.BGP, c.Node); err != nil {
			t.Fatal(err)
		}
		waitEstablished(t, sp, tor2.Addr, 15*time.Second)
		birdHasRoute(t, tor2, "fd00:200:1::/64")
		eventually(t, 10*time.Second, "tor1 dropped the session for the new TTL settings", func() (bool, string) {
			out := tor1.bird().MustCmd(t, "show", "protocols", "node1")
			return !strings.Contains(out, "Established"), out
		})
		staysDown(t, sp, tor1, tor1.Addr, 12*time.Second, switchSide, "GTSM on the switch only")
	})
}
