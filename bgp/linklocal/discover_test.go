package linklocal

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"

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

// When the link comes up the node sends no RA for a second (an RA in that
// moment races the switch's own handling of the link, which FRR can lose
// for good), then three a second apart, ahead of the regular interval.
func TestRAsAfterLinkUp(t *testing.T) {
	a, b := testutil.NewNetns(t, "llE-"), testutil.NewNetns(t, "llF-")
	testutil.Veth(t, "lle0", a, "llf0", b)
	testutil.LinkLocal(t, a, "lle0")
	llB := testutil.LinkLocal(t, b, "llf0")
	startIn(t, b, "llf0", 10*time.Second)

	// The switch's side (A) goes down and up, as in an administrative
	// flap; a raw socket there sees the node's RAs.
	var c *icmp.PacketConn
	var err error
	testutil.InNetns(t, a, func() { c, err = icmp.ListenPacket("ip6:ipv6-icmp", "::") })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testutil.Run(t, "ip", "-n", a, "link", "set", "lle0", "down")
	buf := make([]byte, 1500)
	for { // what came before
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := c.ReadFrom(buf); err != nil {
			break
		}
	}
	testutil.Run(t, "ip", "-n", a, "link", "set", "lle0", "up")
	up := time.Now()
	var ras []time.Duration
	for end := up.Add(4500 * time.Millisecond); time.Now().Before(end); {
		_ = c.SetReadDeadline(end)
		n, src, err := c.ReadFrom(buf)
		if err != nil {
			break
		}
		ip, _ := src.(*net.IPAddr)
		if n > 0 && buf[0] == 134 && ip != nil && ip.IP.Equal(net.IP(llB.AsSlice())) {
			ras = append(ras, time.Since(up))
		}
	}
	t.Logf("RAs after the link came up: %v", ras)
	if len(ras) < 3 {
		t.Fatalf("%d RAs within 4.5s of the link coming up, want 3: %v", len(ras), ras)
	}
	if ras[0] < 900*time.Millisecond || ras[0] > 2*time.Second {
		t.Errorf("first RA %s after the link came up, want 1s", ras[0])
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
