package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/testutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

func TestPlanNexthop(t *testing.T) {
	v6only := config.Node{Underlay: []netip.Addr{netip.MustParseAddr("fd00::2")}}
	dual := config.Node{Underlay: []netip.Addr{netip.MustParseAddr("fd00::2"), netip.MustParseAddr("10.0.0.2")}}
	v4only := config.Node{Underlay: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}
	none := config.Node{}
	s6 := session{address: netip.MustParseAddr("fd00::1"), families: famIPv4 | famIPv6}
	s4 := session{address: netip.MustParseAddr("10.0.0.1"), families: famIPv4 | famIPv6}
	ll := session{address: netip.MustParseAddr("fe80::1%eth0"), iface: "eth0", families: famIPv4 | famIPv6}
	for _, c := range []struct {
		name     string
		node     config.Node
		s        session
		fam      families
		extNH    bool
		sendable bool
		nexthop  string
		depends  bool
	}{
		{"v6 session, v6 routes", v6only, s6, famIPv6, false, true, "fd00::2", true},
		{"v6 session, v4 routes, no v4 underlay, no extNH", v6only, s6, famIPv4, false, false, "", true},
		{"v6 session, v4 routes, no v4 underlay, extNH", v6only, s6, famIPv4, true, true, "fd00::2", true},
		{"v6 session, v4 routes, no underlay, extNH", none, s6, famIPv4, true, true, "", true},
		{"v6 session, v4 routes, v4 underlay, no extNH", dual, s6, famIPv4, false, true, "10.0.0.2", false},
		{"v6 session, v4 routes, v4 underlay, extNH", dual, s6, famIPv4, true, true, "10.0.0.2", false},
		{"v4 session, v4 routes, no underlay", none, s4, famIPv4, false, true, "", false},
		{"v4 session, v6 routes, no v6 underlay", v4only, s4, famIPv6, false, false, "", false},
		{"v4 session, v6 routes, v6 underlay", dual, s4, famIPv6, false, true, "fd00::2", false},
		{"unnumbered, v6 routes", dual, ll, famIPv6, false, true, "", true},
		{"unnumbered, v4 routes, no extNH", dual, ll, famIPv4, false, false, "", true},
		{"unnumbered, v4 routes, extNH", dual, ll, famIPv4, true, true, "", true},
	} {
		p := planNexthop(c.node, c.s, c.fam, c.extNH)
		nh := ""
		if p.nexthop.IsValid() {
			nh = p.nexthop.String()
		}
		if p.sendable != c.sendable || nh != c.nexthop || (p.why == "") != c.sendable {
			t.Errorf("%s: %+v, want sendable %t next hop %q", c.name, p, c.sendable, c.nexthop)
		}
		if d := dependsOnExtNH(c.node, c.s); d != c.depends {
			t.Errorf("%s: dependsOnExtNH = %t, want %t", c.name, d, c.depends)
		}
	}

	ipv4 := gobgp.NewCapExtendedNexthopTuple(gobgp.RF_IPv4_UC, gobgp.AFI_IP6)
	vpn := gobgp.NewCapExtendedNexthopTuple(gobgp.RF_IPv4_VPN, gobgp.AFI_IP6)
	if !extendedNexthopIPv4([]gobgp.ParameterCapabilityInterface{gobgp.NewCapRouteRefresh(), gobgp.NewCapExtendedNexthop([]*gobgp.CapExtendedNexthopTuple{vpn, ipv4})}) {
		t.Error("IPv4 unicast tuple not found")
	}
	if extendedNexthopIPv4([]gobgp.ParameterCapabilityInterface{gobgp.NewCapExtendedNexthop([]*gobgp.CapExtendedNexthopTuple{vpn})}) ||
		extendedNexthopIPv4(nil) {
		t.Error("extended next hop found where IPv4 unicast is not announced")
	}
}

// A switch at the defaults of most vendors: extended next hop off. With
// the default families the session stays up (no IPv4 route with an IPv6
// next hop is ever sent), the IPv6 routes arrive, the IPv4 ones do not
// (Neighbors and the metrics say why); once the node has an IPv4 underlay
// address the IPv4 routes arrive with it as next hop, without a reset.
func TestBIRDWithoutExtendedNexthop(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		tor := l.link(t, "tor1")
		testutil.Addr(t, tor.NS, tor.Dev, "10.100.1.1/24")
		testutil.Addr(t, l.spec.Node, tor.NodeDev, "10.100.1.2/24")
		l.startBIRD(t, tor, birdConf(birdOpts{nodeAS: 65001, noExtNH: true}))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		toml := tor1TOML(l, tor.Addr, "hold-time = \"5s\"\nkeepalive-time = \"1s\"\n")
		sp := startSpeaker(t, l, toml, []Route{
			{Prefix: netip.MustParsePrefix("fd00:200:1::/64")},
			{Prefix: netip.MustParsePrefix("10.200.0.1/32")},
		})
		waitEstablished(t, sp, tor.Addr, 20*time.Second)
		eventually(t, 10*time.Second, "BIRD has the IPv6 route", func() (bool, string) {
			r := birdRoute(t, tor, "fd00:200:1::/64")
			return strings.Contains(r, "BGP.next_hop: "+tor.NodeAddr), r
		})
		_, since := birdSession(t, tor, "node1")

		// Three hold times (5 s) and more: the session stays, and no IPv4
		// route ever reaches BIRD.
		deadline := time.Now().Add(16 * time.Second)
		for {
			state, now := birdSession(t, tor, "node1")
			if state != "Established" || !sameInstant(now, since) {
				out, _ := tor.bird().Cmd("show", "protocols", "all", "node1")
				t.Fatalf("BIRD's session reset (%s since %s, was up since %s):\n%s", state, now, since, out)
			}
			if r := birdRoute(t, tor, "10.200.0.1/32"); r != "" {
				t.Fatalf("BIRD got an IPv4 route although neither extended next hop nor an IPv4 underlay address:\n%s", r)
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		// BIRD drops an IPv4 route with an IPv6 next hop as an invalid
		// attribute (RFC 7606 treat-as-withdraw) and says so in its log;
		// stricter peers reset the session.
		if log := birdLog(t, tor); strings.Contains(log, "Invalid") || strings.Contains(log, "Malformed") {
			t.Errorf("BIRD found an invalid UPDATE:\n%s", log)
		}
		n := neighbor(sp, tor.Addr)
		if n.State != "established" || n.ExtendedNextHop || len(n.FamilyStatus) != 2 {
			t.Fatalf("neighbor = %+v", n)
		}
		if f := n.FamilyStatus[0]; f.Family != "ipv6" || f.State != FamilySent || f.NextHop.String() != tor.NodeAddr {
			t.Errorf("ipv6 status = %+v", f)
		}
		if f := n.FamilyStatus[1]; f.Family != "ipv4" || f.State != FamilyNotSendable || !strings.Contains(f.Reason, "extended next hop") {
			t.Errorf("ipv4 status = %+v", f)
		}
		reg := checkMetrics(t, sp, `
# HELP aird_bgp_peer_family_sendable Whether our routes of the family go to the peer: 0 while the session is down, the peer did not announce the family, or there is no next hop it accepts (airctl bgp neighbors says which).
# TYPE aird_bgp_peer_family_sendable gauge
aird_bgp_peer_family_sendable{family="ipv4",peer="tor1"} 0
aird_bgp_peer_family_sendable{family="ipv6",peer="tor1"} 1
`, "aird_bgp_peer_family_sendable")
		if v, ok := metricValue(t, reg, "aird_bgp_peer_flaps_total", "peer", "tor1"); !ok || v != 0 {
			t.Errorf("flaps = %v", v)
		}

		// An IPv4 underlay address: IPv4 routes go with it, as NEXT_HOP.
		c := parseConfig(t, strings.Replace(toml, "underlay = [\""+tor.NodeAddr+"\"]", "underlay = [\""+tor.NodeAddr+"\", \"10.100.1.2\"]", 1))
		if err := sp.Apply(c.BGP, c.Node); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "BIRD has the IPv4 route with the IPv4 next hop", func() (bool, string) {
			r := birdRoute(t, tor, "10.200.0.1/32")
			return strings.Contains(r, "BGP.next_hop: 10.100.1.2"), r
		})
		eventually(t, 10*time.Second, "the switch's FIB has the IPv4 route", func() (bool, string) {
			r := ip(t, "-n", tor.NS, "-4", "route", "show", "10.200.0.1/32")
			return strings.Contains(r, "via 10.100.1.2"), r
		})
		if state, now := birdSession(t, tor, "node1"); state != "Established" || !sameInstant(now, since) {
			t.Errorf("the session reset: %s since %s (was %s)", state, now, since)
		}
		if log := birdLog(t, tor); strings.Contains(log, "Invalid") || strings.Contains(log, "Malformed") {
			t.Errorf("BIRD found an invalid UPDATE:\n%s", log)
		}
		if f := neighbor(sp, tor.Addr).FamilyStatus[1]; f.State != FamilySent || f.NextHop.String() != "10.100.1.2" {
			t.Errorf("ipv4 status after the underlay change = %+v", f)
		}

		// The switch shuts the session down: the NOTIFICATION it sent
		// is shown decoded.
		tor.bird().MustCmd(t, "disable", "node1")
		eventually(t, 10*time.Second, "the switch's Cease received", func() (bool, string) {
			n := neighbor(sp, tor.Addr)
			return n.State != "established" && n.LastReceived != nil, fmt.Sprintf("%+v", n)
		})
		n = neighbor(sp, tor.Addr)
		if n.LastReceived.Text != "Cease / Administrative Shutdown" || n.LastError != "NOTIFICATION received: Cease / Administrative Shutdown" {
			t.Errorf("after BIRD's disable: last received %+v, last error %q", n.LastReceived, n.LastError)
		}
	})
}

// A switch without the 4-byte AS capability (RFC 6793: BIRD with as4
// off): GoBGP sends it 2-byte AS_PATHs, and BIRD finds nothing malformed.
// (A node with a 4-byte AS cannot be tested against BIRD this way: BIRD
// with as4 off still reads the AS from our capability and refuses it.)
func TestBIRDWithoutFourByteAS(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001, extra: "enable as4 off;"}))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		sp := startSpeaker(t, l, tor1TOML(l, tor.Addr, "prepend = 1\n"), []Route{{Prefix: netip.MustParsePrefix("fd00:200:1::/64")}})
		eventually(t, 20*time.Second, "session established", func() (bool, string) {
			out, _ := tor.bird().Cmd("show", "protocols", "all", "node1")
			return neighbor(sp, tor.Addr).State == "established", out + birdLog(t, tor)
		})
		var r string
		eventually(t, 10*time.Second, "BIRD has the route", func() (bool, string) {
			r = birdRoute(t, tor, "fd00:200:1::/64")
			return r != "", "absent"
		})
		if !strings.Contains(r, "BGP.as_path: 65001 65001") {
			t.Errorf("BIRD without 4-byte AS: want the prepended 2-byte path:\n%s", r)
		}
		if log := birdLog(t, tor); strings.Contains(log, "Invalid") || strings.Contains(log, "Malformed") || strings.Contains(log, "Error") {
			t.Errorf("BIRD found an invalid message:\n%s", log)
		}
	})
}
