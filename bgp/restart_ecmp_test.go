package bgp

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// A default route learned from two peers (ECMP) keeps both next hops across
// a graceful restart of the speaker while only one peer has sent its paths
// again: tor2's session is held down (disabled in BIRD) until well after
// tor1 re-synced and its route reached the new speaker's FIB; the kernel's
// route must go via tor1 and tor2 throughout, until tor2 is back.
func TestGracefulRestartKeepsECMPUntilEveryPeerSynced(t *testing.T) {
	testRestartECMP(t, false)
}

// The same, but tor2 comes back without the default route: its next hop,
// kept from the earlier process, leaves the route at tor2's End-of-RIB.
func TestGracefulRestartDropsKeptNexthopAtSync(t *testing.T) {
	testRestartECMP(t, true)
}

func testRestartECMP(t *testing.T, tor2Withdraws bool) {
	labTest(t, func(t *testing.T, l *lab) {
		for _, name := range []string{"tor1", "tor2"} {
			l.addBIRD(t, name, grBIRDConf("", ""))
		}
	}, func(t *testing.T, l labSpec) {
		tor1, tor2 := l.Tors[0], l.Tors[1]
		ipv6 := "families = [\"ipv6\"]\n"
		toml := grNodeTOML(l, "", grPeer{name: "tor1", addr: tor1.Addr, asn: 65101, extra: ipv6},
			grPeer{name: "tor2", addr: tor2.Addr, asn: 65102, extra: ipv6})
		sp1 := startSpeaker(t, l, toml, nil)
		waitEstablished(t, sp1, tor1.Addr, 20*time.Second)
		waitEstablished(t, sp1, tor2.Addr, 20*time.Second)
		ecmp := func() (bool, string) {
			fib := fibRoutesOf(t, l, "-6")
			return strings.Contains(fib, "nexthop via "+tor1.Addr) && strings.Contains(fib, "nexthop via "+tor2.Addr), fib
		}
		eventually(t, 10*time.Second, "ECMP default via both ToRs", ecmp)

		// Watch from now on: the route may never lose a next hop.
		var mu sync.Mutex
		var lost []string
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for ctx.Err() == nil {
				if ok, fib := ecmp(); !ok {
					mu.Lock()
					lost = append(lost, time.Now().Format("15:04:05.000")+" "+strings.TrimSpace(fib))
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
		defer func() { cancel(); wg.Wait() }()

		if err := sp1.Stop(StopRestart); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "both ToRs see the session closed", func() (bool, string) {
			st1, _ := birdSession(t, tor1, "node1")
			st2, _ := birdSession(t, tor2, "node1")
			return st1 != "Established" && st2 != "Established", st1 + ", " + st2
		})
		// tor2 comes back late.
		tor2.bird().MustCmd(t, "disable", "node1")

		sp2 := newSpeaker(t, l, toml)
		if err := sp2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sp2.Stop(StopShutdown) })
		waitEstablished(t, sp2, tor1.Addr, 20*time.Second)
		eventually(t, 10*time.Second, "tor1's default route installed by the new speaker", func() (bool, string) {
			learned, err := sp2.Routes(RouteQuery{Peer: neighbor(sp2, tor1.Addr).Address})
			return err == nil && len(learned) == 1 && learned[0].Installed, fmt.Sprintf("%+v %v", learned, err)
		})
		// Several FIB passes (settle 100 ms) with tor1 synced, tor2 not.
		time.Sleep(2 * time.Second)
		mu.Lock()
		early := len(lost)
		mu.Unlock()
		if n := neighbor(sp2, tor2.Addr); n.State == "established" {
			t.Fatalf("tor2 came back too early to test anything: %+v", n)
		}

		if tor2Withdraws {
			tor2.bird().MustCmd(t, "disable", "static6")
			cancel()
			wg.Wait()
		}
		tor2.bird().MustCmd(t, "enable", "node1")
		waitEstablished(t, sp2, tor2.Addr, 20*time.Second)
		if tor2Withdraws {
			took := eventually(t, 10*time.Second, "the default route via tor1 only after tor2's End-of-RIB", func() (bool, string) {
				fib := fibRoutesOf(t, l, "-6")
				return strings.Contains(fib, "default via "+tor1.Addr) && !strings.Contains(fib, tor2.Addr), fib
			})
			t.Logf("tor2's kept next hop left %s after tor2 was established", took.Round(time.Millisecond))
			if early > 0 {
				t.Errorf("the default route lost a next hop before tor2 re-synced (%d polls), first:\n%s", early, lost[0])
			}
			return
		}
		eventually(t, 10*time.Second, "tor2's default route installed by the new speaker", func() (bool, string) {
			learned, err := sp2.Routes(RouteQuery{Peer: neighbor(sp2, tor2.Addr).Address})
			return err == nil && len(learned) == 1 && learned[0].Installed, fmt.Sprintf("%+v %v", learned, err)
		})
		time.Sleep(time.Second)
		cancel()
		wg.Wait()
		if early > 0 {
			t.Errorf("the default route lost a next hop before tor2 re-synced (%d polls), first:\n%s", early, lost[0])
		}
		if len(lost) > early {
			t.Errorf("the default route lost a next hop after tor2 came back (%d polls), first:\n%s", len(lost)-early, lost[early])
		}
		if ok, fib := ecmp(); !ok {
			t.Errorf("no ECMP default at the end:\n%s", fib)
		}
	})
}
