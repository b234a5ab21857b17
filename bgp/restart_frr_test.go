package bgp

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// A graceful restart with an unnumbered peer: discovery finds FRR after
// Start, and the first session of the new speaker still carries the
// Restart State and Forwarding State bits (like a peer added at Start),
// so FRR keeps our routes in its kernel throughout. Without the bits FRR
// flushes the routes it kept for us the moment the session comes up and
// reinstalls them from our UPDATEs: a blink at every restart, which the
// rack (integration/lab) saw as a VIP route missing on the FRR ToR.
func TestFRRUnnumberedGracefulRestart(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.startFRR(t, l.linkUnnumbered(t, "tor1"), frrUnnumberedConf)
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		toml := unnumberedTOML(l, frrNodeAS, `"external"`, `"fd00:99::/64", "10.99.0.0/24"`)
		routes := []Route{
			{Prefix: netip.MustParsePrefix("fd00:200:1::/64")},
			{Prefix: netip.MustParsePrefix("10.200.0.1/32")},
		}
		nodeLL := tor.NodeAddr
		inFRRKernel := func() (bool, string) {
			r6 := ip(t, "-n", tor.NS, "-6", "route", "show", "fd00:200:1::/64")
			r4 := ip(t, "-n", tor.NS, "-4", "route", "show", "10.200.0.1/32")
			return strings.Contains(r6, "via "+nodeLL+" dev "+tor.Dev) && strings.Contains(r4, "via inet6 "+nodeLL+" dev "+tor.Dev), r6 + r4
		}
		sp1 := startSpeaker(t, l, toml, routes)
		eventually(t, 30*time.Second, "FRR's kernel has both routes", inFRRKernel)

		// Every change of FRR's kernel routes from here on.
		var changes testutil.SyncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		mon := exec.CommandContext(ctx, "ip", "-ts", "-n", tor.NS, "monitor", "route")
		mon.Stdout = &changes
		if err := mon.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // subscribed

		if err := sp1.Stop(StopRestart); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "FRR sees the session closed", func() (bool, string) {
			up, out := frrSessionUp(t, tor)
			return !up, out
		})
		time.Sleep(time.Second)
		sp2 := newSpeaker(t, l, toml)
		if err := sp2.SetAdvertised(routes); err != nil {
			t.Fatal(err)
		}
		if err := sp2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sp2.Stop(StopShutdown) })
		eventually(t, 30*time.Second, "FRR sees the new session established", func() (bool, string) { return frrSessionUp(t, tor) })
		nb := tor.frr().MustVtysh(t, "show bgp neighbors "+tor.Dev)
		// Our End-of-RIB ends FRR's stale paths; then give it time to show
		// any change.
		eventually(t, 30*time.Second, "FRR has our routes fresh (not stale)", func() (bool, string) {
			r6 := tor.frr().MustVtysh(t, "show bgp ipv6 unicast fd00:200:1::/64")
			r4 := tor.frr().MustVtysh(t, "show bgp ipv4 unicast 10.200.0.1/32")
			return strings.Contains(r6, nodeLL) && strings.Contains(r4, nodeLL) &&
				!strings.Contains(r6, "stale") && !strings.Contains(r4, "stale"), r6 + r4
		})
		time.Sleep(2 * time.Second)
		cancel()
		_ = mon.Wait()

		var lost []string
		for _, line := range strings.Split(changes.String(), "\n") {
			if strings.Contains(line, "Deleted") && (strings.Contains(line, "fd00:200:1::") || strings.Contains(line, "10.200.0.1")) {
				lost = append(lost, line)
			}
		}
		if len(lost) > 0 {
			t.Errorf("FRR's kernel deleted our routes during the graceful restart:\n%s\nFRR's view of the new session:\n%s",
				strings.Join(lost, "\n"), nb)
		}
		if ok, fib := inFRRKernel(); !ok {
			t.Errorf("after the restart FRR's kernel lacks our routes:\n%s", fib)
		}
		t.Logf("FRR's kernel route changes during the restart:\n%s", changes.String())
	})
}
