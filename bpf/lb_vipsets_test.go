package bpf

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// vipSetEnv is an lbEnv with one backend per vip id: vip id i (1..6)
// sends every flow to backend i, so the backend a packet reaches names
// the vips value the data path found.
func vipSetEnv(t *testing.T) *lbEnv {
	t.Helper()
	e := newLBEnv(t)
	for _, id := range v6Backends {
		e.backend(t, id, "2001:db8:be::"+itoa(uint64(id)))
		e.table(t, id, spreadTable(id))
	}
	return e
}

// collidingPorts returns n TCP ports p of vip6 whose service keys share
// one vip_sets set: the set of the first port from 1000 on that is not
// the set of vip6's address entry.
func collidingPorts(t *testing.T, e *lbEnv, n int) []uint16 {
	t.Helper()
	mask := e.objs.LB.VipSets.MaxEntries() - 1
	a := netip.MustParseAddr(vip6)
	addrSet := VIPSetIndex(VIPKey(a, 0, 0)) & mask
	base := uint16(1000)
	for VIPSetIndex(VIPKey(a, uint8(layers.IPProtocolTCP), base))&mask == addrSet {
		base++
	}
	set := VIPSetIndex(VIPKey(a, uint8(layers.IPProtocolTCP), base)) & mask
	var ports []uint16
	for p := base; len(ports) < n; p++ {
		if p == 0 {
			t.Fatalf("fewer than %d ports share set %d", n, set)
		}
		if VIPSetIndex(VIPKey(a, uint8(layers.IPProtocolTCP), p))&mask == set {
			ports = append(ports, p)
		}
	}
	return ports
}

// vipSetOf reads the set of vip_sets holding vip6's TCP port p.
func vipSetOf(t *testing.T, e *lbEnv, p uint16) DatapathVipSet {
	t.Helper()
	var s DatapathVipSet
	idx := VIPSetIndex(VIPKey(netip.MustParseAddr(vip6), uint8(layers.IPProtocolTCP), p)) & (e.objs.LB.VipSets.MaxEntries() - 1)
	e.must(t, e.objs.LB.VipSets.Lookup(idx, &s))
	return s
}

// expectVIP sends a SYN to vip6:port and checks where it goes: to vip id
// vip's backend (encapsulated, byte for byte), or, vip 0, nowhere: dropped
// (the address is a VIP without that service) or passed (not a VIP).
func expectVIP(t *testing.T, e *lbEnv, port uint16, vip uint32) {
	t.Helper()
	e.resetFlows(t)
	in := fromTor(tcp6(t, client6, 40000, port, syn, 64, 20))
	verdict, out := e.run(t, in, true)
	if vip == 0 {
		if verdict != xdpDrop && verdict != xdpPass {
			t.Errorf("port %d: verdict %d, want XDP_DROP or XDP_PASS (no service)", port, verdict)
		}
		return
	}
	want, _ := e.viaGateway(t, tcp6(t, client6, 40000, port, syn, 63, 20), vip, key6(40000, port, layers.IPProtocolTCP))
	if verdict != xdpTx || !bytes.Equal(out[:len(want)], want) {
		t.Errorf("port %d: verdict %d, output %x;\nwant XDP_TX to vip %d's backend: %x", port, verdict, out[:len(want)], vip, want)
	}
}

// TestVIPSets: services are found through vip_sets, the set-associative
// copy of vips the lb stage reads without a call, in every state a set can
// be in; every case ends with vip_sets matching vips exactly.
func TestVIPSets(t *testing.T) {
	tcp := uint8(layers.IPProtocolTCP)
	a6 := netip.MustParseAddr(vip6)
	for _, c := range []struct {
		name string
		// run programs services (ports: 6 TCP ports of vip6 in one set)
		// and checks packets.
		run func(t *testing.T, e *lbEnv, ports []uint16)
	}{
		{"a hit is read from the set, not from vips", func(t *testing.T, e *lbEnv, ports []uint16) {
			e.must(t, e.lb.SetService(a6, tcp, ports[0], 1, 0))
			expectVIP(t, e, ports[0], 1)
			s := vipSetOf(t, e, ports[0])
			if s.Way[0].Key != usedWay(VIPKey(a6, tcp, ports[0]), DatapathVipValue{}).Key || s.Way[0].Value.VipId != 1 {
				t.Fatalf("set %+v does not hold the service in way 0", s)
			}
			// Behind the control plane's back: vips loses the entry,
			// the set still has it, and the packet still finds it.
			k := VIPKey(a6, tcp, ports[0])
			e.must(t, e.objs.LB.Vips.Delete(&k))
			expectVIP(t, e, ports[0], 1)
			e.must(t, e.objs.LB.Vips.Put(&k, &DatapathVipValue{VipId: 1}))
		}},
		{"distinct keys in one set each find their own value", func(t *testing.T, e *lbEnv, ports []uint16) {
			e.must(t, e.lb.SetService(a6, tcp, ports[0], 1, 0))
			e.must(t, e.lb.SetService(a6, tcp, ports[1], 2, 0))
			e.must(t, e.lb.SetAddress(a6))
			expectVIP(t, e, ports[0], 1)
			expectVIP(t, e, ports[1], 2)
			expectVIP(t, e, ports[2], 0) // same set, no service
		}},
		{"a full set overflows into vips, which still forwards", func(t *testing.T, e *lbEnv, ports []uint16) {
			e.must(t, e.lb.SetAddress(a6))
			for i, p := range ports {
				e.must(t, e.lb.SetService(a6, tcp, p, uint32(i+1), 0))
			}
			if s := vipSetOf(t, e, ports[0]); s.Overflow != uint32(len(ports)-vipWays) {
				t.Fatalf("overflow %d, want %d", s.Overflow, len(ports)-vipWays)
			}
			for i, p := range ports {
				expectVIP(t, e, p, uint32(i+1))
			}
			expectVIP(t, e, ports[0]-1, 0)
		}},
		{"a removed service is not found; an overflowed key takes its way", func(t *testing.T, e *lbEnv, ports []uint16) {
			e.must(t, e.lb.SetAddress(a6))
			for i, p := range ports {
				e.must(t, e.lb.SetService(a6, tcp, p, uint32(i+1), 0))
			}
			e.must(t, e.lb.DeleteService(a6, tcp, ports[1])) // in a way
			if s := vipSetOf(t, e, ports[0]); s.Overflow != uint32(len(ports)-vipWays-1) {
				t.Fatalf("overflow %d after a way was freed, want %d", s.Overflow, len(ports)-vipWays-1)
			}
			e.must(t, e.lb.DeleteService(a6, tcp, ports[5])) // in vips only
			expectVIP(t, e, ports[1], 0)
			expectVIP(t, e, ports[5], 0)
			for _, i := range []int{0, 2, 3, 4} {
				expectVIP(t, e, ports[i], uint32(i+1))
			}
			for _, i := range []int{0, 2, 3, 4} {
				e.must(t, e.lb.DeleteService(a6, tcp, ports[i]))
				expectVIP(t, e, ports[i], 0)
			}
			if s := vipSetOf(t, e, ports[0]); s.Overflow != 0 || s.Way != [4]DatapathVipWay{} || s.Seq == 0 || s.Seq&1 != 0 {
				t.Fatalf("emptied set %+v: want no way, no overflow, an even seq that counted the writes", s)
			}
		}},
		{"a changed service is changed in its way", func(t *testing.T, e *lbEnv, ports []uint16) {
			e.must(t, e.lb.SetService(a6, tcp, ports[0], 1, 0))
			e.must(t, e.lb.SetService(a6, tcp, ports[0], 3, 0))
			expectVIP(t, e, ports[0], 3)
			if s := vipSetOf(t, e, ports[0]); s.Way[0].Value.VipId != 3 || s.Way[1] != (DatapathVipWay{}) {
				t.Fatalf("set %+v: want the new value in way 0 alone", s)
			}
		}},
		{"a set being rewritten (odd seq) is not trusted: vips decides", func(t *testing.T, e *lbEnv, ports []uint16) {
			e.must(t, e.lb.SetService(a6, tcp, ports[0], 1, 0))
			idx := VIPSetIndex(VIPKey(a6, tcp, ports[0])) & (e.objs.LB.VipSets.MaxEntries() - 1)
			s := vipSetOf(t, e, ports[0])
			torn := s
			torn.Way[0].Value.VipId = 4 // what a half-written set could say
			torn.Seq |= 1
			e.must(t, e.objs.LB.VipSets.Put(idx, &torn))
			expectVIP(t, e, ports[0], 1)
			torn.Seq++ // the same words, stable: the set decides
			e.must(t, e.objs.LB.VipSets.Put(idx, &torn))
			expectVIP(t, e, ports[0], 4)
			e.must(t, e.objs.LB.VipSets.Put(idx, &s))
		}},
		{"a restart's sync rebuilds the sets from vips", func(t *testing.T, e *lbEnv, ports []uint16) {
			for i, p := range ports {
				e.must(t, e.lb.SetService(a6, tcp, p, uint32(i+1), 0))
			}
			e.must(t, e.lb.SetAddress(a6))
			// A stale table (another process's, or a new empty map):
			// one set wiped, a key vips does not have in another.
			idx := VIPSetIndex(VIPKey(a6, tcp, ports[0])) & (e.objs.LB.VipSets.MaxEntries() - 1)
			e.must(t, e.objs.LB.VipSets.Put(idx, &DatapathVipSet{Seq: 8}))
			ghost := VIPKey(a6, tcp, 7)
			gidx := VIPSetIndex(ghost) & (e.objs.LB.VipSets.MaxEntries() - 1)
			e.must(t, e.objs.LB.VipSets.Put(gidx, &DatapathVipSet{Seq: 2, Way: [4]DatapathVipWay{usedWay(ghost, DatapathVipValue{VipId: 5})}}))
			expectVIP(t, e, ports[0], 0) // the wiped set hides the service
			l := NewLB(e.objs.LB)        // a restarted control plane
			e.must(t, l.SyncVIPSets())
			for i, p := range ports {
				expectVIP(t, e, p, uint32(i+1))
			}
			expectVIP(t, e, 7, 0)
			e.lb = l
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := vipSetEnv(t)
			c.run(t, e, collidingPorts(t, e, vipWays+2))
			if err := e.lb.VerifyVIPSets(); err != nil {
				t.Errorf("vip_sets differs from vips: %v", err)
			}
		})
	}
}

// TestVIPSetsWithoutWays: where the CPU may reorder loads and stores
// (not x86) the writer fills no way (vipSets.ways 0): every key of a set
// is counted in its overflow and looked up in vips, and a restart's sync
// empties the ways a table still holds.
func TestVIPSetsWithoutWays(t *testing.T) {
	tcp := uint8(layers.IPProtocolTCP)
	a6 := netip.MustParseAddr(vip6)
	e := vipSetEnv(t)
	e.lb.vs.ways = 0
	ports := collidingPorts(t, e, vipWays+2)
	e.must(t, e.lb.SetAddress(a6))
	for i, p := range ports {
		e.must(t, e.lb.SetService(a6, tcp, p, uint32(i+1), 0))
	}
	s := vipSetOf(t, e, ports[0])
	if s.Way != [4]DatapathVipWay{} || s.Overflow != uint32(len(ports)) || s.Seq&1 != 0 {
		t.Fatalf("set %+v: want no way used, overflow %d, an even seq", s, len(ports))
	}
	for i, p := range ports {
		expectVIP(t, e, p, uint32(i+1))
	}
	e.must(t, e.lb.DeleteService(a6, tcp, ports[1]))
	expectVIP(t, e, ports[1], 0)
	expectVIP(t, e, ports[0], 1)
	if s := vipSetOf(t, e, ports[0]); s.Overflow != uint32(len(ports)-1) {
		t.Fatalf("overflow %d after a delete, want %d", s.Overflow, len(ports)-1)
	}
	// A table written with ways (an x86 writer's) is rebuilt without.
	idx := VIPSetIndex(VIPKey(a6, tcp, ports[0])) & (e.objs.LB.VipSets.MaxEntries() - 1)
	full := DatapathVipSet{Seq: s.Seq + 2, Overflow: uint32(len(ports) - 1 - vipWays)}
	for w, i := range []int{0, 2, 3, 4} {
		full.Way[w] = usedWay(VIPKey(a6, tcp, ports[i]), DatapathVipValue{VipId: uint32(i + 1)})
	}
	e.must(t, e.objs.LB.VipSets.Put(idx, &full))
	l := NewLB(e.objs.LB)
	l.vs.ways = 0
	e.must(t, l.SyncVIPSets())
	e.lb = l
	if s := vipSetOf(t, e, ports[0]); s.Way != [4]DatapathVipWay{} || s.Overflow != uint32(len(ports)-1) {
		t.Fatalf("set after sync %+v: want no way used, overflow %d", s, len(ports)-1)
	}
	for _, i := range []int{0, 2, 3, 4, 5} {
		expectVIP(t, e, ports[i], uint32(i+1))
	}
	if err := e.lb.VerifyVIPSets(); err != nil {
		t.Errorf("vip_sets differs from vips: %v", err)
	}
}

// TestVIPSetIndexMatchesC: the set the Go side computes for a key is the
// one the data path reads. Each key (IPv4 and IPv6 addresses, TCP and UDP,
// any port) is written into that set alone, never into vips: a packet to
// it is forwarded only if the C hash picks the same set.
func TestVIPSetIndexMatchesC(t *testing.T) {
	e := vipSetEnv(t)
	mask := e.objs.LB.VipSets.MaxEntries() - 1
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		var dst netip.Addr
		if i%2 == 0 {
			var b [16]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			b[0] = 0x20 // global unicast
			dst = netip.AddrFrom16(b)
		} else {
			dst = netip.AddrFrom4([4]byte{198, 18, byte(r.Uint32()), byte(r.Uint32())})
		}
		proto := layers.IPProtocolTCP
		if i%3 == 0 {
			proto = layers.IPProtocolUDP
		}
		port := uint16(1 + r.IntN(65535))
		k := VIPKey(dst, uint8(proto), port)
		idx := VIPSetIndex(k) & mask
		var old DatapathVipSet
		e.must(t, e.objs.LB.VipSets.Lookup(idx, &old))
		set := DatapathVipSet{Seq: old.Seq + 2}
		set.Way[i%vipWays] = usedWay(k, DatapathVipValue{VipId: 1})
		e.must(t, e.objs.LB.VipSets.Put(idx, &set))

		in := fromTor(toService(t, dst, proto, port))
		e.resetFlows(t)
		if verdict, _ := e.run(t, in, true); verdict != xdpTx {
			t.Errorf("%s %s/%d (set %d): verdict %d, want XDP_TX: the data path looked elsewhere", dst, proto, port, idx, verdict)
		}
		old.Seq = set.Seq + 2
		e.must(t, e.objs.LB.VipSets.Put(idx, &old))
	}
}

// toService is a first packet (a SYN for TCP) from a client to dst:port.
func toService(t *testing.T, dst netip.Addr, proto layers.IPProtocol, port uint16) []byte {
	t.Helper()
	var nl gopacket.NetworkLayer
	var l3 gopacket.SerializableLayer
	if dst.Is4() {
		ip := ip4(client4, dst.String(), proto, 64)
		nl, l3 = ip, ip
	} else {
		ip := ip6(client6, dst.String(), proto, 64)
		nl, l3 = ip, ip
	}
	if proto == layers.IPProtocolUDP {
		return ipPacket(t, l3, udpL(nl, 5000, port), gopacket.Payload("q"))
	}
	return ipPacket(t, l3, tcpL(nl, 5000, port, syn), gopacket.Payload("q"))
}
