package bgp

import (
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Routes learned from BIRD, among them an IPv4 default with an IPv6 next
// hop (RFC 8950), are installed, and put back when deleted behind the
// speaker's back; a route dropped from SetAdvertised leaves
// BIRD's RIB; when BIRD dies the routes learned from it leave the FIB.
func TestWithdrawAndSessionLoss(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001, export: "where source = RTS_STATIC",
			statics: []string{"::/0", "fd00:aa::/64", "0.0.0.0/0", "10.0.0.0/8"}}))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		pod := Route{Prefix: netip.MustParsePrefix("fd00:200:1::/64")}
		vip := Route{Prefix: netip.MustParsePrefix("fd00:300::10/128")}
		sp := startSpeaker(t, l, tor1TOML(l, tor.Addr, `[bgp.peers.import]
prefixes = ["::/0", "0.0.0.0/0"]`), []Route{pod, vip})
		waitEstablished(t, sp, tor.Addr, 20*time.Second)
		eventually(t, 10*time.Second, "BIRD has both routes, the FIB the defaults", func() (bool, string) {
			fib6, fib4 := fibRoutesOf(t, l, "-6"), fibRoutesOf(t, l, "-4")
			return birdRoute(t, tor, "fd00:300::10/128") != "" && birdRoute(t, tor, "fd00:200:1::/64") != "" &&
				strings.Contains(fib6, "default via "+tor.Addr) && strings.Contains(fib4, "default via inet6 "+tor.Addr) &&
				!strings.Contains(fib4, "10.0.0.0"), fib6 + fib4
		})

		// A learned route deleted behind the speaker's back is put back
		// by the periodic kernel check (every 5 s while the FIB is
		// quiet).
		ip(t, "-6", "route", "del", "default", "table", strconv.Itoa(l.Table), "proto", strconv.Itoa(l.Proto))
		took := eventually(t, 15*time.Second, "the deleted default route is put back", func() (bool, string) {
			fib6 := fibRoutesOf(t, l, "-6")
			return strings.Contains(fib6, "default via "+tor.Addr), fib6
		})
		t.Logf("a route deleted behind the speaker's back was back in %s", took.Round(time.Millisecond))

		start := time.Now()
		if err := sp.SetAdvertised([]Route{pod}); err != nil {
			t.Fatal(err)
		}
		took = eventually(t, 5*time.Second, "the VIP leaves BIRD", func() (bool, string) {
			return birdRoute(t, tor, "fd00:300::10/128") == "", "still there"
		})
		t.Logf("withdrawn VIP left BIRD's RIB in %s", took.Round(time.Millisecond))
		if birdRoute(t, tor, "fd00:200:1::/64") == "" {
			t.Errorf("the pod prefix left BIRD too")
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("withdrawal took %s", time.Since(start))
		}

		// Session loss: BIRD dies (SIGKILL; the outer run reaps it).
		if err := syscall.Kill(tor.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		took = eventually(t, 15*time.Second, "the FIB loses BIRD's default routes", func() (bool, string) {
			fib := fibRoutesOf(t, l, "-6") + fibRoutesOf(t, l, "-4")
			return strings.TrimSpace(fib) == "", fib
		})
		t.Logf("routes from the dead peer left the FIB %s after SIGKILL", took.Round(time.Millisecond))
		if n := neighbor(sp, tor.Addr); n.State == "established" {
			t.Errorf("session still established: %+v", n)
		}
	})
}
