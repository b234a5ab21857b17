package testutil

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// LinkLocal returns dev's fe80:: address inside ns, waiting up to 10s for
// duplicate address detection to finish.
func LinkLocal(t testing.TB, ns, dev string) netip.Addr {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out := Run(t, "ip", "-n", ns, "-6", "addr", "show", "dev", dev, "scope", "link")
		if strings.Contains(out, "tentative") {
			continue
		}
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
				return p.Addr()
			}
		}
	}
	t.Fatalf("%s/%s has no usable link-local address", ns, dev)
	return netip.Addr{}
}
