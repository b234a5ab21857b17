package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// A drained node stays drained across a restart of the speaker: the new
// speaker finds the drain marker, peers without announcing anything (BIRD
// ends up with none of its routes), and Undrain announces them again and
// removes the marker.
func TestDrainSurvivesRestart(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001, extra: "graceful restart on; graceful restart time 60;"}))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		pod := "fd00:200:1::/64"
		toml := nodeTOML(l) + fmt.Sprintf(`
[bgp]
asn = 65001
connect-retry = "1s"
[bgp.drain]
wait = "1s"
[[bgp.peers]]
name = "tor1"
address = %q
asn = 65101
`, tor.Addr)
		routes := []Route{{Prefix: netip.MustParsePrefix(pod)}}
		sp1 := startSpeaker(t, l, toml, routes)
		waitEstablished(t, sp1, tor.Addr, 20*time.Second)
		eventually(t, 10*time.Second, "BIRD has the pod prefix", func() (bool, string) {
			r := birdRoute(t, tor, pod)
			return r != "", r
		})
		if err := sp1.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the drain withdrew the pod prefix", func() (bool, string) {
			r := birdRoute(t, tor, pod)
			return r == "", r
		})
		if err := sp1.Stop(StopRestart); err != nil {
			t.Fatal(err)
		}

		sp2 := newSpeaker(t, l, toml)
		if err := sp2.SetAdvertised(routes); err != nil {
			t.Fatal(err)
		}
		if err := sp2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sp2.Stop(StopShutdown) })
		if !sp2.Drained() {
			t.Fatal("the restarted speaker is not drained")
		}
		waitEstablished(t, sp2, tor.Addr, 20*time.Second)
		time.Sleep(2 * time.Second) // past our End-of-RIB: nothing is announced
		if r := birdRoute(t, tor, pod); r != "" {
			t.Fatalf("the restarted, drained speaker announced the pod prefix:\n%s", r)
		}
		if err := sp2.Undrain(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "Undrain announced the pod prefix", func() (bool, string) {
			r := birdRoute(t, tor, pod)
			return r != "", r
		})
		if newDrainMarker(l.StateDir).present() {
			t.Error("the drain marker is left after Undrain")
		}
	})
}
