package bgp

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A graceful restart faster than the switch's BFD detection time: BIRD
// (bfd graceful, graceful restart on) keeps its BFD session with the previous
// process until it expires (3 s: our 300 ms x 10), dropping the new
// process's packets meanwhile, and restarts the BGP session when it does
// (without the hold: the new session, opened after 0.9 s, went down 2 s
// later). The new speaker opens its session only once its own BFD session
// is up, after that expiry, so the session it opens stays, and so does our
// route in BIRD.
func TestGracefulRestartBFDHold(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", grBIRDConf(" bfd graceful;",
			"protocol bfd { interface \"*\" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }; }\n"))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		toml := grNodeTOML(l, "[bgp.peers.bfd]\nenabled = true\nmin-rx = \"300ms\"\nmin-tx = \"300ms\"\nmultiplier = 10\n",
			grPeer{name: "tor1", addr: tor.Addr, asn: 65101})
		routes := []Route{{Prefix: netip.MustParsePrefix("fd00:300::10/128")}}
		sp1 := startSpeaker(t, l, toml, routes)
		waitEstablished(t, sp1, tor.Addr, 20*time.Second)
		eventually(t, 15*time.Second, "BFD up and our route in BIRD", func() (bool, string) {
			n := neighbor(sp1, tor.Addr)
			return n.BFD == "up" && birdRoute(t, tor, "fd00:300::10/128") != "", n.BFD
		})

		if err := sp1.Stop(StopRestart); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		sp2 := newSpeaker(t, l, toml)
		if err := sp2.SetAdvertised(routes); err != nil {
			t.Fatal(err)
		}
		if err := sp2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sp2.Stop(StopShutdown) })
		n := waitEstablished(t, sp2, tor.Addr, 30*time.Second)
		up := time.Since(down)
		_, since := birdSession(t, tor, "node1")
		t.Logf("new session established %s after the restart (BIRD's BFD detection time 3s), BFD %s, BIRD since %s",
			up.Round(time.Millisecond), n.BFD, since)
		if up < 3*time.Second {
			t.Errorf("session opened %s after the restart: before BIRD's BFD session with the previous process could expire (3s)", up.Round(time.Millisecond))
		}
		// Past any expiry of the old BFD session: the session stays (a
		// reset takes BIRD out of Established for over a second, its
		// connect delay), and so does our route in BIRD.
		sec := func(s string) string { return strings.Split(s, ".")[0] }
		end := time.Now().Add(5 * time.Second)
		for time.Now().Before(end) {
			st, s := birdSession(t, tor, "node1")
			if st != "Established" || sec(s) != sec(since) {
				t.Fatalf("BIRD's session went %s (since %s, established since %s): reset after it came up", st, s, since)
			}
			if r := birdRoute(t, tor, "fd00:300::10/128"); r == "" {
				t.Fatalf("BIRD lost our route")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(neighbor(sp2, tor.Addr).BFD, "up") {
			t.Errorf("BFD with BIRD not up after the restart: %+v", neighbor(sp2, tor.Addr))
		}
	})
}
