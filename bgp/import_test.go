package bgp

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func importTOML(l labSpec, tor1Prefixes string, tor2Max int) string {
	return tor1TOML(l, l.Tors[0].Addr, fmt.Sprintf(`families = ["ipv6"]
[bgp.peers.import]
prefixes = [%s]
max-prefixes = 10
[[bgp.peers]]
name = "tor2"
address = %q
asn = 65102
families = ["ipv6"]
[bgp.peers.import]
prefixes = ["::/0", "fd00:dd::/32 le 64"]
max-prefixes = %d`, tor1Prefixes, l.Tors[1].Addr, tor2Max))
}

var fibDDRE = regexp.MustCompile(`(?m)^fd00:dd:`)

var birdMaxPrefixRE = regexp.MustCompile(`(?m)^(\S+ \S+) .*Received: Maximum number of prefixes reached`)

// maxPrefixNotifications returns when BIRD logged receiving Cease/1.
func maxPrefixNotifications(t *testing.T, tor torSpec) []time.Time {
	t.Helper()
	var out []time.Time
	for _, m := range birdMaxPrefixRE.FindAllStringSubmatch(birdLog(t, tor), -1) {
		ts, err := time.Parse("2006-01-02 15:04:05.000", m[1])
		if err != nil {
			t.Fatalf("BIRD log time %q: %v", m[1], err)
		}
		out = append(out, ts)
	}
	return out
}

// Deny by default: tor1 sends a default route and three more prefixes,
// only ::/0 is accepted; tor2 sends ::/0 and twelve /64s, all accepted;
// the default route is ECMP across both. Then tor2's max-prefixes drops
// below what it sends: tor2 gets NOTIFICATION Cease/Maximum Number of
// Prefixes Reached (RFC 4486) and is held down (MaxPrefixRetry, 2 s here,
// doubling each time it comes back over its limit), its routes leave the
// FIB and never come back, and tor1's session is untouched.
func TestImportFilterECMPAndMaxPrefixes(t *testing.T) {
	dd := make([]string, 12)
	for i := range dd {
		dd[i] = fmt.Sprintf("fd00:dd:%x::/64", i+1)
	}
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001, export: "where source = RTS_STATIC",
			statics: []string{"::/0", "fd00:aa::/64", "fd00:bb::/64", "fd00:cc::/48"}}))
		l.addBIRD(t, "tor2", birdConf(birdOpts{nodeAS: 65001, export: "where source = RTS_STATIC",
			statics: append([]string{"::/0"}, dd...)}))
	}, func(t *testing.T, l labSpec) {
		tor1, tor2 := l.Tors[0], l.Tors[1]
		sp := startSpeaker(t, l, importTOML(l, `"::/0"`, 20), nil, func(o *Options) { o.MaxPrefixRetry = 2 * time.Second })
		waitEstablished(t, sp, tor1.Addr, 20*time.Second)
		waitEstablished(t, sp, tor2.Addr, 20*time.Second)

		var fib string
		took := eventually(t, 10*time.Second, "FIB: ECMP default and tor2's /64s", func() (bool, string) {
			fib = fibRoutesOf(t, l, "-6")
			ok := strings.Contains(fib, "nexthop via "+tor1.Addr) && strings.Contains(fib, "nexthop via "+tor2.Addr) &&
				len(fibDDRE.FindAllString(fib, -1)) == 12
			return ok, fib
		})
		t.Logf("FIB complete %s after both sessions were up:\n%s", took.Round(time.Millisecond), fib)
		for _, p := range []string{"fd00:aa::", "fd00:bb::", "fd00:cc::"} {
			if strings.Contains(fib, p) {
				t.Errorf("FIB has %s, which no import filter allows:\n%s", p, fib)
			}
		}
		n1, n2 := neighbor(sp, tor1.Addr), neighbor(sp, tor2.Addr)
		if n1.Received != 4 || n1.Accepted != 1 || n2.Received != 13 || n2.Accepted != 13 {
			t.Errorf("counts: tor1 received %d accepted %d (want 4, 1); tor2 received %d accepted %d (want 13, 13)",
				n1.Received, n1.Accepted, n2.Received, n2.Accepted)
		}
		learned, err := sp.Routes(RouteQuery{Peer: n1.Address})
		if err != nil || len(learned) != 1 || learned[0].Prefix.String() != "::/0" || !learned[0].Installed {
			t.Errorf("Routes(tor1) = %+v, %v; want ::/0, installed", learned, err)
		}

		_, since1 := birdSession(t, tor1, "node1")
		_, since2 := birdSession(t, tor2, "node1")

		// A wider import filter applies by a soft reset in.
		c := parseConfig(t, importTOML(l, `"::/0", "fd00:aa::/64"`, 20))
		if err := sp.Apply(c.BGP, c.Node); err != nil {
			t.Fatal(err)
		}
		took = eventually(t, 10*time.Second, "fd00:aa::/64 accepted after the reload", func() (bool, string) {
			fib = fibRoutesOf(t, l, "-6")
			return strings.Contains(fib, "fd00:aa::/64 via "+tor1.Addr), fib
		})
		t.Logf("new import filter applied in %s", took.Round(time.Millisecond))
		if strings.Contains(fib, "fd00:bb::") {
			t.Errorf("fd00:bb::/64 accepted:\n%s", fib)
		}

		c = parseConfig(t, importTOML(l, `"::/0", "fd00:aa::/64"`, 5))
		if err := sp.Apply(c.BGP, c.Node); err != nil {
			t.Fatal(err)
		}
		took = eventually(t, 10*time.Second, "tor2 reset and its routes gone", func() (bool, string) {
			fib = fibRoutesOf(t, l, "-6")
			_, s2 := birdSession(t, tor2, "node1")
			ok := s2 != since2 && !strings.Contains(fib, tor2.Addr) && strings.Contains(fib, "default via "+tor1.Addr)
			return ok, fib
		})
		t.Logf("tor2 over its limit: reset and withdrawn from the FIB in %s", took.Round(time.Millisecond))
		all, _ := tor2.bird().Cmd("show", "protocols", "all", "node1")
		if !strings.Contains(all, "Received: Maximum number of prefixes reached") {
			t.Errorf("BIRD tor2 did not receive Cease/Maximum number of prefixes reached:\n%s", all)
		}
		n := neighbor(sp, tor2.Addr)
		if !strings.Contains(n.LastError, "maximum prefixes exceeded") || n.LastSent == nil ||
			n.LastSent.Text != "Cease / Maximum Number of Prefixes Reached" || n.State == "established" {
			t.Errorf("tor2 after the limit: state %s, last error %q, last sent %+v", n.State, n.LastError, n.LastSent)
		}
		// tor2 is held down 2 s, comes back, is sent Cease/1 again, then
		// held down 4 s; its routes never land.
		var hits []time.Time
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) && len(hits) < 2 {
			if f := fibRoutesOf(t, l, "-6"); strings.Contains(f, tor2.Addr) {
				t.Fatalf("tor2's routes are in the FIB while it is over its limit:\n%s", f)
			}
			hits = maxPrefixNotifications(t, tor2)
			time.Sleep(50 * time.Millisecond)
		}
		if len(hits) < 2 {
			t.Fatalf("BIRD tor2 got %d Cease/1 within 15 s, want 2 (held down 2 s in between):\n%s", len(hits), birdLog(t, tor2))
		}
		if gap := hits[1].Sub(hits[0]); gap < 2*time.Second {
			t.Errorf("second Cease/1 %s after the first, within the 2 s hold-down", gap)
		}
		t.Logf("Cease/1 to tor2 at %v", hits)
		if n := neighbor(sp, tor2.Addr); !strings.Contains(n.LastError, "held down until") || !strings.Contains(n.LastError, "(4s)") {
			t.Errorf("tor2's last error after the second time: %q, want the doubled hold-down", n.LastError)
		}
		if st, s1 := birdSession(t, tor1, "node1"); st != "Established" || !sameInstant(s1, since1) {
			t.Errorf("tor1 session: %s since %s; want Established since %s (not reset)", st, s1, since1)
		}
		if n := neighbor(sp, tor1.Addr); !n.Since.Equal(n1.Since) {
			t.Errorf("tor1 established at %s, then %s: it was reset", n1.Since, n.Since)
		}
	})
}

// bestWatched reports whether the speaker follows GoBGP's best-path events.
func bestWatched(sp *Speaker) bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.run != nil && sp.run.bestWatched
}

// A node that imports nothing does not watch GoBGP's best-path events
// (they would carry only its own paths); the reload that gives a peer
// import prefixes starts the watch: the accepted routes reach the FIB, and
// later changes from the switch follow through the events (nothing else
// reads GoBGP's RIB again after the reload), here the switch withdrawing
// them all.
func TestImportStartsAtReload(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001, export: "where source = RTS_STATIC",
			statics: []string{"fd00:aa::/64", "fd00:bb::/64", "fd00:cc::/64"}}))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		none := tor1TOML(l, tor.Addr, `families = ["ipv6"]`)
		sp := startSpeaker(t, l, none, nil)
		waitEstablished(t, sp, tor.Addr, 20*time.Second)
		eventually(t, 10*time.Second, "tor1's three routes received", func() (bool, string) {
			n := neighbor(sp, tor.Addr)
			return n.Received == 3, fmt.Sprintf("received %d", n.Received)
		})
		if bestWatched(sp) {
			t.Error("best-path events watched although no peer imports")
		}
		if f := fibRoutesOf(t, l, "-6"); f != "" {
			t.Errorf("FIB without an import filter:\n%s", f)
		}

		c := parseConfig(t, tor1TOML(l, tor.Addr, `families = ["ipv6"]
[bgp.peers.import]
prefixes = ["fd00:aa::/64", "fd00:bb::/64"]`))
		if err := sp.Apply(c.BGP, c.Node); err != nil {
			t.Fatal(err)
		}
		if !bestWatched(sp) {
			t.Error("best-path events not watched after a peer got import prefixes")
		}
		var fib string
		eventually(t, 10*time.Second, "FIB: the two accepted prefixes", func() (bool, string) {
			fib = fibRoutesOf(t, l, "-6")
			return strings.Contains(fib, "fd00:aa::/64 via "+tor.Addr) && strings.Contains(fib, "fd00:bb::/64 via "+tor.Addr), fib
		})
		if strings.Contains(fib, "fd00:cc::") {
			t.Errorf("FIB has fd00:cc::/64, which the filter does not accept:\n%s", fib)
		}

		tor.bird().MustCmd(t, "disable", "static6")
		took := eventually(t, 10*time.Second, "FIB empty after tor1 withdrew its routes", func() (bool, string) {
			fib = fibRoutesOf(t, l, "-6")
			return fib == "", fib
		})
		t.Logf("withdrawal reached the FIB in %s", took.Round(time.Millisecond))
	})
}
