package bpf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// TestConntrackSetSpread: the conntrack hash (ConntrackHash, flow_ct_hash)
// spreads the flows a node meets over the sets of one CPU's partition as
// well as the flow hash does, and about as uniform placement would: the
// flows of one client on sequential ports, the clients of one /64
// (sequential and random interface ids), IPv4 clients of one /16, one
// client to many VIPs of a /112, and flows hashed without ports. Measured
// by the flows that find their set's four ways taken (they would be
// untracked or evict another): at most 1.5 times the flow hash's count
// plus 20, and at most three times the count a uniform placement gives
// (Poisson). No set may hold more than 10 flows.
func TestConntrackSetSpread(t *testing.T) {
	const sets = 131072 // per CPU: the default 1,048,576 flows in 4-way sets on 2 CPUs
	rnd := rand.New(rand.NewPCG(1, 2))
	vip := netip.MustParseAddr("2001:db8:100::1")
	client := netip.MustParseAddr("2001:db8:c0::5")
	addr6 := func(p netip.Addr, b ...byte) netip.Addr {
		a := p.As16()
		copy(a[16-len(b):], b)
		return netip.AddrFrom16(a)
	}
	tcp := uint8(layers.IPProtocolTCP)
	layouts := []struct {
		name  string
		flows func() []DatapathFlowKey
	}{
		{"one client, sequential ports", func() (out []DatapathFlowKey) {
			for p := 1024; p < 65536; p++ {
				out = append(out, NewFlowKey(client, vip, uint16(p), 443, tcp))
			}
			return out
		}},
		{"one /64, sequential interface ids, 4 ports each", func() (out []DatapathFlowKey) {
			for i := 1; i <= 25000; i++ {
				c := addr6(client, byte(i>>16), byte(i>>8), byte(i))
				for p := range 4 {
					out = append(out, NewFlowKey(c, vip, uint16(40000+p), 443, tcp))
				}
			}
			return out
		}},
		{"one /64, random interface ids, random ports", func() (out []DatapathFlowKey) {
			for range 100000 {
				var iid [8]byte
				binary.LittleEndian.PutUint64(iid[:], rnd.Uint64())
				out = append(out, NewFlowKey(addr6(client, iid[:]...), vip, uint16(32768+rnd.IntN(28232)), 443, tcp))
			}
			return out
		}},
		{"IPv4 clients of one /16, 2 ports each", func() (out []DatapathFlowKey) {
			v4 := netip.MustParseAddr("198.51.100.10")
			for i := range 50000 {
				c := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
				out = append(out, NewFlowKey(c, v4, 50000, 80, tcp), NewFlowKey(c, v4, 50001, 80, tcp))
			}
			return out
		}},
		{"one client, 1,000 VIPs of a /112, 100 ports", func() (out []DatapathFlowKey) {
			for v := range 1000 {
				d := addr6(vip, byte(v>>8), byte(v))
				for p := range 100 {
					out = append(out, NewFlowKey(client, d, uint16(20000+p), 443, tcp))
				}
			}
			return out
		}},
		{"no ports: one /64, sequential interface ids", func() (out []DatapathFlowKey) {
			for i := 1; i <= 100000; i++ {
				out = append(out, NewFlowKey(addr6(client, byte(i>>16), byte(i>>8), byte(i)), vip, 0, 0, uint8(layers.IPProtocolUDP)))
			}
			return out
		}},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			flows := l.flows()
			ct, ctMost := excess(flows, sets, ConntrackHash)
			fh, _ := excess(flows, sets, func(k *DatapathFlowKey) uint64 { return FlowHash(k, 0x61697264) })
			uniform := poissonExcess(float64(len(flows))/sets, sets)
			t.Logf("%d flows: %d without a way by the conntrack hash (fullest set %d), %d by the flow hash, %.0f uniform",
				len(flows), ct, ctMost, fh, uniform)
			if float64(ct) > 1.5*float64(fh)+20 || float64(ct) > 3*uniform+20 || ctMost > 10 {
				t.Errorf("poor spread: %d flows without a way (flow hash %d, uniform %.0f), fullest set %d", ct, fh, uniform, ctMost)
			}
		})
	}
}

// excess counts the flows beyond CT_WAYS in their set (sets per CPU) by
// hash, and the fullest set's count.
func excess(flows []DatapathFlowKey, sets uint32, hash func(*DatapathFlowKey) uint64) (over, most int) {
	per := make([]int, sets)
	for i := range flows {
		s := ConntrackIndex(hash(&flows[i]), 0, sets)
		per[s]++
		if per[s] > ctWays {
			over++
		}
		most = max(most, per[s])
	}
	return over, most
}

// ctWays is CT_WAYS.
const ctWays = len(DatapathCtSet{}.Way)

// poissonExcess is the expected number of flows beyond CT_WAYS over sets
// sets when each holds a Poisson(lambda) number of flows.
func poissonExcess(lambda float64, sets uint32) float64 {
	var e float64
	p := math.Exp(-lambda)
	for k := 1; k < 64; k++ {
		p *= lambda / float64(k)
		if k > ctWays {
			e += p * float64(k-ctWays)
		}
	}
	return e * float64(sets)
}

// TestLBEstablishedOuterFromEntry: a conntrack hit computes no flow hash;
// the outer header's varying bits (IPv6 flow label, source bits) come from
// the bits of the flow hash the entry kept when it was written, so the
// first packet and the established ones leave with the same outer header.
// Checked by rewriting the kept bits in the map: the next packet's outer
// header follows the entry (and its backend stays the tracked one).
func TestLBEstablishedOuterFromEntry(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	var sets uint32
	e.must(t, e.objs.Constants.CtSets.Get(&sets))
	cases := []struct {
		name  string
		vip   uint32
		key   DatapathFlowKey
		inner func(t testing.TB, f tcpFlags, hop uint8) []byte
	}{
		{"IPv6-in-IPv6", 1, key6(41000, 443, layers.IPProtocolTCP), func(t testing.TB, f tcpFlags, hop uint8) []byte {
			return tcp6(t, client6, 41000, 443, f, hop, 20)
		}},
		{"IPv4-in-IPv6", 3, key4(vip4, 41001, 80, layers.IPProtocolTCP), func(t testing.TB, f tcpFlags, hop uint8) []byte {
			return tcp4(t, vip4, 41001, 80, f, hop, 20)
		}},
		{"IPv4-in-IPv4", 4, key4(vip4b, 41002, 80, layers.IPProtocolTCP), func(t testing.TB, f tcpFlags, hop uint8) []byte {
			return tcp4(t, vip4b, 41002, 80, f, hop, 20)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := fromTor(tc.inner(t, ack, 64))
			first, id := e.viaGateway(t, tc.inner(t, ack, 63), tc.vip, tc.key)
			steps := []struct {
				name  string
				want  []byte
				delta st
			}{
				{"first packet: tracked", first, newFlow},
				{"second packet: a hit, the same outer header", first, st{ctHit: 1, ctPromo: 1, sTX: 1}},
			}
			for _, s := range steps {
				before := e.snap(t)
				v, out := e.run(t, in, true)
				if v != xdpTx || !bytes.Equal(out, s.want) {
					t.Fatalf("%s: verdict %d, output\n got  %x\n want %x", s.name, v, out, s.want)
				}
				checkDeltas(t, before, e.snap(t), s.delta, nil)
			}

			idx := ConntrackIndex(ConntrackHash(&tc.key), firstCPU(t), sets)
			var set DatapathCtSet
			e.must(t, e.objs.LB.Conntrack.Lookup(idx, &set))
			w := -1
			for i := range set.Way {
				if set.Way[i].LastSeen != 0 && set.Way[i].Key == tc.key {
					w = i
				}
			}
			if w < 0 {
				t.Fatalf("the flow is not in set %d", idx)
			}
			h := FlowHash(&tc.key, e.settings.HashSeed)
			shift := uint32(DatapathCtHashBitsCT_LABEL_SHIFT)
			if got := uint64(set.Way[w].HashHi)<<32 | uint64(set.Way[w].Flags>>shift); got != h&0xffffffff000fffff {
				t.Fatalf("entry keeps hash bits %#x, want %#x (the flow hash's bits 0-19 and 32-63)", got, h&0xffffffff000fffff)
			}
			other := h ^ 0x5a5a5a5a_000a5a5a
			set.Way[w].Flags = set.Way[w].Flags&(1<<shift-1) | uint32(other)<<shift
			set.Way[w].HashHi = uint32(other >> 32)
			e.must(t, e.objs.LB.Conntrack.Put(idx, &set))
			want := e.encapsulated(t, tc.inner(t, ack, 63), e.backends[id], other, gwMAC, uplinkMAC)
			if bytes.Equal(want, first) {
				t.Fatal("the rewritten bits change nothing in the outer header: the test proves nothing")
			}
			before := e.snap(t)
			v, out := e.run(t, in, true)
			if v != xdpTx || !bytes.Equal(out, want) {
				t.Fatalf("after rewriting the entry's hash bits: verdict %d, output\n got  %x\n want %x", v, out, want)
			}
			checkDeltas(t, before, e.snap(t), st{ctHit: 1, sTX: 1}, nil)
		})
	}
}
