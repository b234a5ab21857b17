package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

// Drain announces every route again with GRACEFUL_SHUTDOWN (65535:0) and
// the drain prepends, BIRD sees both, then after drain.wait the routes
// are withdrawn; a route added meanwhile is not announced; Undrain brings
// everything back without them.
func TestBIRDDrain(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001}))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		pod, vip := "fd00:200:1::/64", "10.200.0.1/32"
		sp := startSpeaker(t, l, nodeTOML(l)+fmt.Sprintf(`
[bgp]
asn = 65001
connect-retry = "1s"
[bgp.drain]
wait = "2s"
prepend = 2
[[bgp.peers]]
name = "tor1"
address = %q
asn = 65101
`, tor.Addr), []Route{{Prefix: netip.MustParsePrefix(pod)}, {Prefix: netip.MustParsePrefix(vip)}})
		waitEstablished(t, sp, tor.Addr, 20*time.Second)
		eventually(t, 10*time.Second, "BIRD has the routes", func() (bool, string) {
			r := birdRoute(t, tor, pod)
			return r != "" && birdRoute(t, tor, vip) != "", r
		})
		if r := birdRoute(t, tor, pod); strings.Contains(r, "(65535,0)") {
			t.Fatalf("graceful shutdown before the drain:\n%s", r)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(sp.Collector())

		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- sp.Drain(context.Background()) }()
		var r string
		took := eventually(t, 5*time.Second, "BIRD sees GRACEFUL_SHUTDOWN and the prepends", func() (bool, string) {
			r = birdRoute(t, tor, pod)
			v4 := birdRoute(t, tor, vip)
			return strings.Contains(r, "(65535,0)") && strings.Contains(r, "BGP.as_path: 65001 65001 65001") &&
				strings.Contains(v4, "(65535,0)"), r + v4
		})
		t.Logf("graceful shutdown announced %s after Drain:\n%s", took.Round(time.Millisecond), r)
		if !sp.Drained() {
			t.Errorf("Drained() = false while draining")
		}
		if err := promtest.GatherAndCompare(reg, strings.NewReader(`
# HELP aird_bgp_drained Whether the node is drained (graceful shutdown announced or routes withdrawn).
# TYPE aird_bgp_drained gauge
aird_bgp_drained 1
`), "aird_bgp_drained"); err != nil {
			t.Error(err)
		}
		// A route given while draining gets the community too.
		late := "fd00:300::99/128"
		if err := sp.SetAdvertised([]Route{{Prefix: netip.MustParsePrefix(pod)}, {Prefix: netip.MustParsePrefix(vip)},
			{Prefix: netip.MustParsePrefix(late)}}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the late route carries graceful shutdown", func() (bool, string) {
			r := birdRoute(t, tor, late)
			return strings.Contains(r, "(65535,0)"), r
		})

		if err := <-done; err != nil {
			t.Fatalf("Drain: %v", err)
		}
		t.Logf("Drain returned after %s", time.Since(start).Round(time.Millisecond))
		if d := time.Since(start); d < 2*time.Second {
			t.Errorf("Drain returned after %s, before drain.wait (2s)", d)
		}
		eventually(t, 5*time.Second, "BIRD loses the routes after the wait", func() (bool, string) {
			return birdCount(t, tor, "node1", "master6")+birdCount(t, tor, "node1", "master4") == 0, birdRoute(t, tor, pod)
		})
		if st, _ := birdSession(t, tor, "node1"); st != "Established" {
			t.Errorf("BIRD session %s after the drain: sessions must stay up", st)
		}
		// Drained: new routes are only recorded.
		extra := "fd00:300::100/128"
		if err := sp.SetAdvertised([]Route{{Prefix: netip.MustParsePrefix(pod)}, {Prefix: netip.MustParsePrefix(vip)},
			{Prefix: netip.MustParsePrefix(extra)}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if r := birdRoute(t, tor, extra); r != "" {
			t.Errorf("a route was announced while drained:\n%s", r)
		}

		if err := sp.Undrain(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "BIRD has the routes again, without graceful shutdown", func() (bool, string) {
			r := birdRoute(t, tor, pod)
			return r != "" && !strings.Contains(r, "(65535,0)") && strings.Contains(r, "BGP.as_path: 65001\n") &&
				birdRoute(t, tor, vip) != "" && birdRoute(t, tor, extra) != "" && birdRoute(t, tor, late) == "", r
		})
		if sp.Drained() {
			t.Errorf("Drained() = true after Undrain")
		}
	})
}
