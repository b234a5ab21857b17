package linklocal

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

func startIn(t *testing.T, ns, dev string, interval time.Duration) *Discoverer {
	t.Helper()
	var d *Discoverer
	var err error
	testutil.InNetns(t, ns, func() {
		d, err = Start(context.Background(), Options{Interface: dev, Interval: interval, Expiry: 3 * interval})
	})
	if err != nil {
		t.Fatalf("start on %s/%s: %v", ns, dev, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func waitPeer(t *testing.T, d *Discoverer, want func(netip.Addr) bool, what string) netip.Addr {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case a := <-d.Updates():
			if want(a) {
				return a
			}
		case <-deadline:
			t.Fatalf("no update %s within 10s (peer now %v)", what, d.Peer())
		}
	}
}

// Two nodes on a veth find each other, each learning the other's link-local
// address from its Router Advertisements; the peer is lost when the link
// goes down and found again when it comes back.
func TestTwoNodesFindEachOther(t *testing.T) {
	a, b := testutil.NewNetns(t, "llA-"), testutil.NewNetns(t, "llB-")
	testutil.Veth(t, "lla0", a, "llb0", b)
	llA, llB := testutil.LinkLocal(t, a, "lla0"), testutil.LinkLocal(t, b, "llb0")

	da := startIn(t, a, "lla0", 200*time.Millisecond)
	db := startIn(t, b, "llb0", 200*time.Millisecond)
	if got := waitPeer(t, da, func(x netip.Addr) bool { return x.IsValid() }, "with a peer"); got != llB.WithZone("lla0") {
		t.Fatalf("A found %v, want %v%%lla0", got, llB)
	}
	if got := waitPeer(t, db, func(x netip.Addr) bool { return x.IsValid() }, "with a peer"); got != llA.WithZone("llb0") {
		t.Fatalf("B found %v, want %v%%llb0", got, llA)
	}
	if da.Self() != llA.WithZone("lla0") {
		t.Fatalf("A's Self() = %v, want %v", da.Self(), llA)
	}

	testutil.Run(t, "ip", "-n", b, "link", "set", "llb0", "down")
	waitPeer(t, da, func(x netip.Addr) bool { return !x.IsValid() }, "losing the peer")
	testutil.Run(t, "ip", "-n", b, "link", "set", "llb0", "up")
	llB = testutil.LinkLocal(t, b, "llb0")
	if got := waitPeer(t, da, func(x netip.Addr) bool { return x.IsValid() }, "finding the peer again"); got != llB.WithZone("lla0") {
		t.Fatalf("A re-found %v, want %v", got, llB)
	}
}

func TestStartNeedsLinkLocal(t *testing.T) {
	a, b := testutil.NewNetns(t, "llC-"), testutil.NewNetns(t, "llD-")
	testutil.Veth(t, "llc0", a, "lld0", b)
	testutil.Run(t, "ip", "-n", a, "-6", "addr", "flush", "dev", "llc0")
	var err error
	testutil.InNetns(t, a, func() {
		var d *Discoverer
		d, err = Start(context.Background(), Options{Interface: "llc0"})
		if err == nil {
			d.Close()
		}
	})
	if err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Fatalf("Start without a link-local address: %v", err)
	}
}
