package bpf

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// crafted is a flow to vip6:443 whose conntrack set and tag equal the
// victim's by construction, as anyone can make them: the conntrack hash
// (flow_ct_hash) takes no seed and depends only on the xor of the key's
// five 64-bit words, so flipping the same bits of the client address's
// bytes 8-9 (the low bytes of the key's second word) and of the source
// port (the low bytes of its fifth) keeps the xor. n numbers the flip.
func crafted(victim netip.Addr, sport uint16, n uint16) (netip.Addr, uint16) {
	a := victim.As16()
	a[8] ^= byte(n >> 8)
	a[9] ^= byte(n)
	return netip.AddrFrom16(a), sport ^ n
}

// flowFrom is a forwarded TCP/IPv6 packet src:sport -> vip6:443 and its
// expected output (the table's backend for it).
func flowFrom(src netip.Addr, sport uint16, f tcpFlags) func(t *testing.T, e *lbEnv) result {
	return func(t *testing.T, e *lbEnv) result {
		k := NewFlowKey(src, netip.MustParseAddr(vip6), sport, 443, uint8(layers.IPProtocolTCP))
		want, id := e.viaGateway(t, tcp6(t, src.String(), sport, 443, f, 63, 20), 1, k)
		return result{in: fromTor(tcp6(t, src.String(), sport, 443, f, 64, 20)), want: want, backend: id}
	}
}

// TestConntrackCraftedCollisions shows what the unseeded conntrack set
// hash allows (docs/operator-guide.md, "Conntrack"): flows crafted to
// share a victim's set - computed offline, no probing - evict the
// victim's entry while it is new (seen once) or idle; its next packet then
// misses and takes the Maglev table, which gives it the same backend and
// the same outer header as long as the backend set is unchanged. An
// active established entry is never evicted by them. An idle one evicted
// while the table changed follows the new table: that is the cost.
func TestConntrackCraftedCollisions(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	var sets uint32
	e.must(t, e.objs.Constants.CtSets.Get(&sets))
	victim, vport := netip.MustParseAddr(client6), uint16(45000)
	vk := NewFlowKey(victim, netip.MustParseAddr(vip6), vport, 443, uint8(layers.IPProtocolTCP))
	set := ConntrackIndex(ConntrackHash(&vk), firstCPU(t), sets)
	var attackers []func(t *testing.T, e *lbEnv) result
	for n := uint16(1); n <= 12; n++ {
		src, sport := crafted(victim, vport, n*0x0101)
		k := NewFlowKey(src, netip.MustParseAddr(vip6), sport, 443, uint8(layers.IPProtocolTCP))
		if k == vk || ConntrackHash(&k) != ConntrackHash(&vk) {
			t.Fatalf("crafted flow %v:%d does not collide with the victim's", src, sport)
		}
		attackers = append(attackers, flowFrom(src, sport, ack))
	}
	held := func() bool {
		var s DatapathCtSet
		e.must(t, e.objs.LB.Conntrack.Lookup(set, &s))
		for _, w := range s.Way {
			if w.LastSeen != 0 && w.Key == vk {
				return true
			}
		}
		return false
	}
	evict := st{ctMiss: 1, ctInsert: 1, sTX: 1, DatapathLbStatLB_STAT_CT_EVICT: 1}

	// The victim's handshake: its first ACK makes a new entry.
	e.sendDelta(t, flowFrom(victim, vport, syn)(t, e), newSYN)
	first := flowFrom(victim, vport, ack)(t, e)
	e.sendDelta(t, first, newFlow)
	time.Sleep(tick) // the victim's entry is the least recently seen
	for i, a := range attackers[:4] {
		want := newFlow
		if i == 3 {
			want = evict // three empty ways, then the victim's
		}
		e.sendDelta(t, a(t, e), want)
	}
	if held() {
		t.Fatal("four crafted flows did not evict the victim's new entry")
	}
	// Its next packet misses, takes the table and leaves exactly as the
	// first did (same backend, same outer header); it evicts a crafted
	// entry to be tracked again.
	e.sendDelta(t, first, evict)
	if !held() {
		t.Fatal("the victim's flow is not tracked again")
	}

	// Established (its next packet promotes it), the victim stays: the
	// crafted flows only replace each other.
	e.sendDelta(t, first, st{ctHit: 1, ctPromo: 1, sTX: 1})
	for _, a := range attackers[4:8] {
		time.Sleep(tick)
		e.sendDelta(t, a(t, e), evict)
	}
	if !held() {
		t.Fatal("crafted new flows evicted an active established entry")
	}

	// Idle past the conntrack idle time, it may be replaced too - by an
	// established flow only, so crafted flows that each send two packets;
	// if its backend changed meanwhile, its next packet follows the new
	// table.
	vb := first.backend
	e.withTable(t, 1, tableWithout(vb))
	idle := e.settings
	idle.ConntrackIdle = time.Nanosecond
	e.withSettings(t, idle)
	for _, a := range attackers[8:11] {
		r := a(t, e)
		e.sendDelta(t, r, evict) // replaces a new crafted entry
		e.sendDelta(t, r, st{ctHit: 1, ctPromo: 1, sTX: 1})
	}
	time.Sleep(tick)
	e.sendDelta(t, attackers[11](t, e), evict)
	if held() {
		t.Fatal("crafted flows did not replace the victim's idle established entry")
	}
	moved := flowFrom(victim, vport, ack)(t, e)
	if moved.backend == vb {
		t.Fatalf("the new table still gives the victim backend %d: the test proves nothing", vb)
	}
	e.sendDelta(t, moved, evict)
}
