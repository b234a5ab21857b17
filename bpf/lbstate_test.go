package bpf

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/aird-net/aird/internal/testutil"
)

// Five flows that share a conntrack set: the fifth replaces the least
// recently seen one, which then misses and takes the Maglev table again.
func TestConntrackSetEviction(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	var sets uint32
	if err := e.objs.Constants.CtSets.Get(&sets); err != nil {
		t.Fatal(err)
	}
	// Find five client ports whose flows land in one set.
	cpu := firstCPU(t)
	want := ConntrackIndex(FlowHash(ptrKey(key6(30000, 443, layers.IPProtocolTCP)), e.settings.HashSeed), cpu, sets)
	ports := []uint16{30000}
	for p := uint16(30001); len(ports) < 5; p++ {
		k := key6(p, 443, layers.IPProtocolTCP)
		if ConntrackIndex(FlowHash(&k, e.settings.HashSeed), cpu, sets) == want {
			ports = append(ports, p)
		}
	}
	send := func(port uint16, f tcpFlags) {
		t.Helper()
		r := tcp6Flow(port, 443, f, 1)(t, e)
		if v, out := e.run(t, r.in, true); v != xdpTx || string(out) != string(r.want) {
			t.Fatalf("port %d: verdict %d", port, v)
		}
	}
	for _, p := range ports[:4] {
		send(p, syn)
	}
	before := e.snap(t)
	send(ports[4], syn)
	after := e.snap(t)
	checkDeltas(t, before, after, st{ctMiss: 1, ctInsert: 1, sTX: 1, DatapathLbStatLB_STAT_CT_EVICT: 1}, nil)
	// The set holds the fifth flow and three of the first four.
	var set DatapathCtSet
	if err := e.objs.LB.Conntrack.Lookup(want, &set); err != nil {
		t.Fatal(err)
	}
	held := map[uint16]bool{}
	for _, w := range set.Way {
		held[Ntohs(w.Key.Sport)] = w.LastSeen != 0
	}
	var gone []uint16
	for _, p := range ports[:4] {
		if !held[p] {
			gone = append(gone, p)
		}
	}
	if !held[ports[4]] || len(gone) != 1 {
		t.Fatalf("set %d holds %v after inserting %v", want, held, ports)
	}
	// The evicted flow misses and is tracked again (evicting another).
	before = e.snap(t)
	send(gone[0], ack)
	after = e.snap(t)
	checkDeltas(t, before, after, st{ctMiss: 1, ctInsert: 1, sTX: 1, DatapathLbStatLB_STAT_CT_EVICT: 1}, nil)
}

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
