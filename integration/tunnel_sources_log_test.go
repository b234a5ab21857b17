package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// TestTunnelSourcesFollowAddresses: the journal says which tunnel sources
// are accepted at start and whenever they change, following the uplinks'
// addresses for "on-link", and warns when none are (docs/operator-guide.md,
// "Tunnel packets to a backend"; docs/configuration.md,
// datapath.tunnel-sources).
func TestTunnelSourcesFollowAddresses(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.start()
	waitLog := func(from int, what string, want ...string) int {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			log := n.log.String()[from:]
			for _, l := range strings.Split(log, "\n") {
				ok := strings.Contains(l, what)
				for _, w := range want {
					ok = ok && strings.Contains(l, w)
				}
				if ok {
					return from + strings.Index(log, l) + len(l)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no log line %q with %q:\n%s", what, want, log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	at := waitLog(0, "tunnel packets accepted from", "fd00:100:1::/64", "10.100.1.0/24")

	testutil.Addr(t, n.ns, "uplink0", "fd00:100:9::1/64")
	at = waitLog(at, "tunnel packets accepted from", "fd00:100:9::/64", "fd00:100:1::/64")

	n.writeConfig(strings.Replace(n.config("info", "uplink0"), "[datapath]\n", "[datapath]\ntunnel-sources = [\"none\"]\n", 1))
	if _, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload with tunnel-sources = [\"none\"]: exit %d: %s", code, errs)
	}
	waitLog(at, "no tunnel sources: tunnel packets to this node are dropped")
}
