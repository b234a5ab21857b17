package bpf

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/aird-net/aird/internal/testutil"
)

// The next hop of a backend is cached: a neighbour change shows only when
// the cache entry is dropped (backend rewritten) or expires.
func TestNexthopCache(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	s := e.settings
	s.NexthopTTL = time.Hour
	e.must(t, e.node.SetSettings(s))
	flow := key6(41000, 443, layers.IPProtocolTCP)
	be, id, h := e.expectBackend(t, 1, flow)
	in := fromTor(tcp6(t, client6, 41000, 443, syn, 64, 10))
	out := func(mac []byte) []byte {
		return e.encapsulated(t, tcp6(t, client6, 41000, 443, syn, 63, 10), be, h, mac, uplinkMAC)
	}
	check := func(what string, mac []byte) {
		t.Helper()
		v, got := e.run(t, in, true)
		if want := out(mac); v != xdpTx || string(got) != string(want) {
			t.Fatalf("%s: verdict %d\n got  %x\n want %x", what, v, got, want)
		}
	}
	check("first packet", gwMAC)
	newMAC := []byte{0x02, 0xaa, 0, 0, 0, 0xee}
	testutil.Run(t, "ip", "-n", e.ns, "neigh", "replace", "2001:db8:ff::fe", "lladdr", "02:aa:00:00:00:ee",
		"dev", linkName(t, e), "nud", "permanent")
	check("cached next hop", gwMAC)
	e.must(t, e.lb.SetBackend(id, be))
	check("after the backend was rewritten", newMAC)

	s.NexthopTTL = time.Millisecond
	e.must(t, e.node.SetSettings(s))
	e.must(t, e.lb.SetBackend(id, be)) // start with an entry of the short lifetime
	check("refilled", newMAC)
	testutil.Run(t, "ip", "-n", e.ns, "neigh", "replace", "2001:db8:ff::fe", "lladdr", gwMAC.String(),
		"dev", linkName(t, e), "nud", "permanent")
	time.Sleep(50 * time.Millisecond)
	check("after expiry", gwMAC)
}

func linkName(t *testing.T, e *lbEnv) string {
	t.Helper()
	var name string
	testutil.InNetns(t, e.ns, func() {
		l, err := netlinkByIndex(e.ifindex)
		if err != nil {
			t.Fatal(err)
		}
		name = l
	})
	return name
}
