package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Stop(StopRestart) closes the session without CEASE: BIRD (graceful
// restart on) keeps the node's routes as stale, the node's kernel keeps the
// routes learned from BIRD, and a new speaker started within the restart
// time takes over without either ever going missing; a route of ours that
// the RIB no longer holds is removed once the new speaker is synced.
// Stop(StopShutdown) then makes BIRD drop the routes at once, and empties
// the FIB.
func TestGracefulRestart(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", grBIRDConf("", ""))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		toml := grNodeTOML(l, "", grPeer{name: "tor1", addr: tor.Addr, asn: 65101})
		routes := []Route{
			{Prefix: netip.MustParsePrefix("fd00:200:1::/64")},
			{Prefix: netip.MustParsePrefix("fd00:300::10/128")},
		}
		sp1 := startSpeaker(t, l, toml, routes)
		waitEstablished(t, sp1, tor.Addr, 20*time.Second)
		present := func() (bool, string) {
			pod, vip := birdRoute(t, tor, "fd00:200:1::/64"), birdRoute(t, tor, "fd00:300::10/128")
			fib := fibRoutesOf(t, l, "-6")
			return pod != "" && vip != "" && strings.Contains(fib, "default via "+tor.Addr),
				fmt.Sprintf("pod %t, vip %t, fib %q", pod != "", vip != "", fib)
		}
		eventually(t, 10*time.Second, "routes in BIRD and the FIB", present)

		// Watch from now on: nothing may go missing.
		var mu sync.Mutex
		var missing []string
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for ctx.Err() == nil {
				if ok, what := present(); !ok {
					mu.Lock()
					missing = append(missing, time.Now().Format("15:04:05.000")+" "+what)
					mu.Unlock()
				}
				time.Sleep(50 * time.Millisecond)
			}
		})

		if err := sp1.Stop(StopRestart); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		eventually(t, 5*time.Second, "BIRD sees the session closed", func() (bool, string) {
			st, _ := birdSession(t, tor, "node1")
			return st != "Established", st
		})
		proto, _ := tor.bird().Cmd("show", "protocols", "all", "node1")
		t.Logf("BIRD while the speaker is down:\n%s", proto)
		for _, want := range []string{"Neighbor graceful restart active", "Last error:       Socket: Connection closed"} {
			if !strings.Contains(proto, want) {
				t.Errorf("BIRD does not say %q: no graceful restart, or a NOTIFICATION was sent", want)
			}
		}
		time.Sleep(2 * time.Second)
		// A route the previous process installed that the peer no
		// longer sends: the new speaker removes it once synced.
		ip(t, "-n", l.Node, "-6", "route", "add", "fd00:77::/64", "via", tor.Addr,
			"table", strconv.Itoa(l.Table), "proto", strconv.Itoa(l.Proto), "metric", "20")

		sp2 := newSpeaker(t, l, toml)
		if err := sp2.SetAdvertised(routes); err != nil {
			t.Fatal(err)
		}
		if err := sp2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sp2.Stop(StopShutdown) })
		waitEstablished(t, sp2, tor.Addr, 20*time.Second)
		t.Logf("new speaker established %s after the old one stopped", time.Since(down).Round(time.Millisecond))
		// Stale routes are replaced after our End-of-RIB; give BIRD and
		// the FIB reconciler time to show any gap.
		eventually(t, 10*time.Second, "BIRD's routes are fresh again", func() (bool, string) {
			r := birdRoute(t, tor, "fd00:200:1::/64")
			return r != "" && !strings.Contains(r, "stale"), r
		})
		eventually(t, 10*time.Second, "the stale route is removed after the sync", func() (bool, string) {
			fib := fibRoutesOf(t, l, "-6")
			return !strings.Contains(fib, "fd00:77::"), fib
		})
		time.Sleep(2 * time.Second)
		cancel()
		wg.Wait()
		if len(missing) > 0 {
			t.Fatalf("routes went missing during the graceful restart:\n%s", strings.Join(missing, "\n"))
		}

		if err := sp2.Stop(StopShutdown); err != nil {
			t.Fatal(err)
		}
		took := eventually(t, 3*time.Second, "BIRD drops the routes after CEASE", func() (bool, string) {
			gone := birdRoute(t, tor, "fd00:200:1::/64") == "" && birdRoute(t, tor, "fd00:300::10/128") == ""
			return gone, "still there; BIRD: " + tor.bird().MustCmd(t, "show", "protocols", "all", "node1")
		})
		t.Logf("after StopShutdown BIRD dropped the routes in %s", took.Round(time.Millisecond))
		if fib := fibRoutesOf(t, l, "-6"); strings.TrimSpace(fib) != "" {
			t.Errorf("FIB not emptied by StopShutdown:\n%s", fib)
		}
	})
}
