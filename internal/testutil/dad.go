package testutil

import (
	"strings"
	"testing"
	"time"
)

// WaitIPv6Ready waits until no IPv6 address in the namespaces is still
// tentative (duplicate address detection running), which takes a second or
// two after a link comes up. Addr adds with nodad, but the kernel's own
// link-local addresses go through DAD, and until it ends the kernel sends
// no neighbour solicitation that needs a link-local source - for instance
// to resolve the gateway of a reply whose source address lives on lo (a
// backend answering from its VIP).
func WaitIPv6Ready(t testing.TB, namespaces ...string) {
	t.Helper()
	var last string
	if !WaitFor(10*time.Second, func() bool {
		for _, ns := range namespaces {
			out := Run(t, "ip", "-n", ns, "-6", "addr", "show", "tentative")
			if strings.TrimSpace(out) != "" {
				last = ns + ":\n" + out
				return false
			}
		}
		return true
	}) {
		t.Fatalf("IPv6 addresses still tentative after 10s in %s", last)
	}
}
