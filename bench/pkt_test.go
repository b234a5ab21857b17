package bench

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// BenchmarkPacket is the per-packet benchmark of record (docs/performance.md):
// aird_xdp with 100 backends behind one VIP (programmed by lb.Manager)
// against two floors measured alternately in the same run - floor_xdp
// (MAC swap, XDP_TX) and floor_ip6ip6 (the least an IPv6 load balancer
// does: encapsulate, XDP_TX) - by two methods:
//
//   - single-shot: BPF_PROG_TEST_RUN with repeat 1 on a fresh copy of
//     the packet; the kernel's time includes a fixed test-run overhead,
//     in the numerator and the floor alike;
//   - steady-state: repeat 1,000 through restore_xdp (bench/floor.c),
//     which undoes the encapsulation before every repetition and tail
//     calls the program under test; the harness's fixed cost (its checks,
//     the tail call, the flow counter), measured with null_xdp as the
//     target, is subtracted; undoing the encapsulation (one
//     bpf_xdp_adjust_head) stays in both aird's time and the floor's.
//
// The uplink is listed as a node's is, a NIC whose RSS keeps a flow on
// one CPU (one-cpu: no cross-CPU conntrack steps); the cases marked
// @any-cpu list it as a veth is, where a SYN sweeps its tuple on the
// other CPUs' partitions and a miss searches them.
//
// Cases: an established flow (conntrack hit); a new flow's SYN (a
// conntrack lookup that misses; the Maglev table decides and nothing is
// written, bpf/lb.h); and a new flow's first packet that is not a SYN
// (the handshake's ACK: lookup, miss, insert - the new-flow cost) with
// conntrack empty and with conntrack full, where every insert evicts a
// flow (asserted with the ct_evict counter). The output of every
// measured run is checked: an IPv6-in-IPv6 packet to the backend the
// Maglev table gives the flow, carrying the input with its hop limit
// decremented.
func BenchmarkPacket(b *testing.B) {
	for _, c := range []packetCase{
		{name: "established"},
		{name: "new-flow-syn", newFlow: true, syn: true},
		{name: "new-flow-ct-empty", newFlow: true},
		{name: "new-flow-ct-full", newFlow: true, ctFull: true},
		{name: "new-flow-syn@any-cpu", newFlow: true, syn: true, anyCPU: true},
		{name: "new-flow-ct-full@any-cpu", newFlow: true, ctFull: true, anyCPU: true},
	} {
		for _, steady := range []bool{false, true} {
			method := "single-shot"
			if steady {
				method = "steady-state"
			}
			b.Run(c.name+"/"+method, func(b *testing.B) {
				ns, ifindex := newBenchNS(b)
				e := newEnvWith(b, ns, ifindex, 1, envOptions{anyCPU: c.anyCPU})
				pb := newPacketBench(b, e)
				pb.run(b, c, steady)
			})
		}
	}
}

// packetCase is one case of BenchmarkPacket.
type packetCase struct {
	name    string
	newFlow bool // every packet is another flow
	syn     bool // a TCP SYN (else an ACK)
	ctFull  bool // conntrack full: every insert evicts
	anyCPU  bool // the uplink is listed as any-cpu (veth), not one-cpu (a NIC)
	single  bool // BenchmarkPacketAB: single-shot (repeat 1), not steady state
}

// steadyRepeat is the repetitions of one steady-state test run.
const steadyRepeat = 1000

type packetBench struct {
	e       *env
	vip     netip.Addr
	table   []uint32              // slot -> backend id
	addrs   map[uint32]netip.Addr // backend id -> address
	seed    uint32
	harness map[string]*ebpf.Program // restore_xdp with targets[0] = the named program
	floor   *FloorObjects
}

func newPacketBench(b *testing.B, e *env) *packetBench {
	pb := &packetBench{e: e, vip: vipAddr(0), floor: e.floor, harness: map[string]*ebpf.Program{}}
	ids := e.lbm.IDs(nil, false)
	tab, err := bpf.ReadTable(e.lbMaps.Maglev, ids[0].VIPID)
	if err != nil {
		b.Fatal(err)
	}
	pb.table = tab.IDs()
	if pb.addrs, err = bpf.NewLB(e.lbMaps).Backends(); err != nil {
		b.Fatal(err)
	}
	return pb
}

// backendOf is the backend the Maglev table gives the TCP flow of pkt.
func (pb *packetBench) backendOf(pkt []byte) netip.Addr {
	src := netip.AddrFrom16([16]byte(pkt[14+8 : 14+24]))
	dst := netip.AddrFrom16([16]byte(pkt[14+24 : 14+40]))
	k := bpf.NewFlowKey(src, dst, binary.BigEndian.Uint16(pkt[offSport:]), binary.BigEndian.Uint16(pkt[offSport+2:]), 6)
	h := bpf.FlowHash(&k, pb.seed)
	return pb.addrs[pb.table[bpf.MaglevSlot(h, uint32(len(pb.table)))]]
}

// checkOut fails unless out is in (its inner packet) encapsulated in IPv6
// to the backend of in's flow, or, for a floor, to floor_ip6ip6's fixed
// backend (nil check for the MAC-swap floor).
func (pb *packetBench) checkOut(b *testing.B, what string, in, out []byte, backend netip.Addr) {
	if len(out) < len(in)+40 || out[12] != 0x86 || out[13] != 0xdd || out[14+6] != 41 {
		b.Fatalf("%s: output is not IPv6 in IPv6: %x", what, out[:min(len(out), 80)])
	}
	if got := netip.AddrFrom16([16]byte(out[14+24 : 14+40])); got != backend {
		b.Fatalf("%s: sent to %s, want %s", what, got, backend)
	}
	inner := out[14+40 : 14+40+len(in)-14]
	want := bytes.Clone(in[14:])
	if what == "aird" {
		want[7]-- // the inner hop limit, decremented at the tunnel entry
	}
	if !bytes.Equal(inner, want) {
		b.Fatalf("%s: inner packet %x, want %x", what, inner, want)
	}
}

var floorBackend = netip.MustParseAddr("2001:db8:be::1")

// harnessFor loads restore_xdp in front of target.
func (pb *packetBench) harnessFor(b *testing.B, name string, target *ebpf.Program, pkt []byte, hop, vary bool) *ebpf.Program {
	return newHarness(b, target, pkt, func(c *FloorRestoreConf) {
		if hop {
			c.Hop = 1
		}
		if vary {
			c.Vary = 1
		}
	})
}

// newHarness loads restore_xdp in front of target, configured with pkt's
// Ethernet header and what set adds.
func newHarness(b *testing.B, target *ebpf.Program, pkt []byte, set func(*FloorRestoreConf)) *ebpf.Program {
	var objs FloorObjects
	if err := LoadFloorObjects(&objs, nil); err != nil {
		b.Fatalf("load harness: %v", err)
	}
	b.Cleanup(func() { _ = objs.Close() })
	var c FloorRestoreConf
	copy(c.Eth.H_dest[:], pkt[0:6])
	copy(c.Eth.H_source[:], pkt[6:12])
	c.Eth.H_proto = binary.LittleEndian.Uint16(pkt[12:14]) // network order in memory
	set(&c)
	must(b, objs.Restore.Put(uint32(0), &c))
	must(b, objs.Targets.Put(uint32(0), target))
	return objs.RestoreXdp
}

// setUp prepares conntrack for case c of pkt's flow: full, or empty and,
// for an established flow, holding it.
func (pb *packetBench) setUp(b *testing.B, c packetCase, pkt []byte) {
	e := pb.e
	if c.ctFull {
		fillConntrack(b, e)
	} else {
		e.resetCT(b)
	}
	if !c.newFlow {
		// The flow's first ACK inserts it (new), the second makes it
		// established.
		inNetns(b, e.ns, func() {
			runOnce(b, e.prog, pkt, e.ifindex, xdpTx)
			runOnce(b, e.prog, pkt, e.ifindex, xdpTx)
		})
	}
}

// prepare is setUp plus the steady-state harness in front of aird.
func (pb *packetBench) prepare(b *testing.B, c packetCase, pkt []byte) abTarget {
	pb.setUp(b, c, pkt)
	return abTarget{
		aird:        pb.harnessFor(b, "aird", pb.e.prog, pkt, true, c.newFlow),
		evictBefore: lbStat(b, pb.e, bpf.DatapathLbStatLB_STAT_CT_EVICT),
	}
}

// checkEvicted fails unless, with conntrack full, every one of inserts
// new flows evicted one (the ct_evict counter grew by as much since
// before).
func (pb *packetBench) checkEvicted(b *testing.B, c packetCase, before, inserts uint64) {
	if !c.ctFull {
		return
	}
	if ev := lbStat(b, pb.e, bpf.DatapathLbStatLB_STAT_CT_EVICT) - before; ev < inserts {
		b.Fatalf("conntrack full: %d inserts evicted only %d flows", inserts, ev)
	}
}

func (pb *packetBench) run(b *testing.B, c packetCase, steady bool) {
	e := pb.e
	newFlow, ctFull := c.newFlow, c.ctFull
	inserting := newFlow && !c.syn
	pkt := template(b, c.syn)
	setFlow(pkt, 0, 0)
	pb.setUp(b, c, pkt)
	evictBefore := lbStat(b, e, bpf.DatapathLbStatLB_STAT_CT_EVICT)
	var inserts uint64
	r := map[string]samples{}
	inNetns(b, e.ns, func() {
		if !steady {
			macPkt, encPkt := template(b, false), template(b, false)
			out := make([]byte, len(pkt)+256)
			var flow uint32
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if newFlow {
					flow++
					setFlow(pkt, flow, 0)
				}
				if inserting {
					inserts++
				}
				r["mac"] = append(r["mac"], float64(runRepeat(b, e.floor.FloorXdp, macPkt, nil, e.ifindex, 1)))
				r["ip6ip6"] = append(r["ip6ip6"], float64(runRepeat(b, e.floor.FloorIp6ip6, encPkt, out, e.ifindex, 1)))
				pb.checkOut(b, "floor", encPkt, out, floorBackend)
				r["aird"] = append(r["aird"], float64(runRepeat(b, e.prog, pkt, out, e.ifindex, 1)))
				pb.checkOut(b, "aird", pkt, out, pb.backendOf(pkt))
			}
			return
		}
		plain := template(b, false)
		hAird := pb.harnessFor(b, "aird", e.prog, pkt, true, newFlow)
		hEnc := pb.harnessFor(b, "ip6ip6", e.floor.FloorIp6ip6, plain, false, false)
		hMac := pb.harnessFor(b, "mac", e.floor.FloorXdp, plain, false, false)
		hNull := pb.harnessFor(b, "null", e.floor.NullXdp, plain, false, newFlow)
		out := make([]byte, len(pkt)+256)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if inserting && !ctFull && e.inserted >= e.ctShare/4 {
				b.StopTimer()
				e.resetCT(b) // far from full: an empty table's insert
				b.StartTimer()
			}
			if inserting {
				e.inserted += steadyRepeat
			}
			r["null"] = append(r["null"], float64(runRepeat(b, hNull, plain, nil, e.ifindex, steadyRepeat)))
			r["mac"] = append(r["mac"], float64(runRepeat(b, hMac, plain, nil, e.ifindex, steadyRepeat)))
			r["ip6ip6"] = append(r["ip6ip6"], float64(runRepeat(b, hEnc, plain, out, e.ifindex, steadyRepeat)))
			pb.checkOut(b, "floor", plain, out, floorBackend)
			if inserting {
				inserts += steadyRepeat
			}
			r["aird"] = append(r["aird"], pb.steadyRound(b, hAird, pkt, out, i, newFlow))
		}
	})
	pb.checkEvicted(b, c, evictBefore, inserts)
	pb.report(b, r, steady)
}

// steadyRound is round i of a steady-state run of hAird (restore_xdp in
// front of aird) on pkt: the kernel's ns per repetition, the last
// output checked. For new flows restore_xdp counts the source up before
// every repetition: round i's flows are i*steadyRepeat+1 .. +steadyRepeat.
func (pb *packetBench) steadyRound(b *testing.B, hAird *ebpf.Program, pkt, out []byte, i int, newFlow bool) float64 {
	in, last := pkt, pkt
	if newFlow {
		base := uint32(i)*steadyRepeat + 1
		in, last = bytes.Clone(pkt), bytes.Clone(pkt)
		binary.BigEndian.PutUint32(in[offSrcLow:], base)
		binary.BigEndian.PutUint32(last[offSrcLow:], base+steadyRepeat)
	}
	d := float64(runRepeat(b, hAird, in, out, pb.e.ifindex, steadyRepeat))
	pb.checkOut(b, "aird", last, out, pb.backendOf(last))
	return d
}

// report publishes trimmed means and the ratios to both floors; in the
// steady state net of the harness (null_xdp behind restore_xdp), and the
// IPv6 floor's ratio also with the harness in both (x-ip6ip6-floor-gross:
// the restore step counted in aird and the floor alike, as issue 10's
// figures were measured).
func (pb *packetBench) report(b *testing.B, r map[string]samples, steady bool) {
	mean := func(k string) float64 { _, m := r[k].stats(); return m }
	aird, mac, enc := mean("aird"), mean("mac"), mean("ip6ip6")
	if steady {
		null := mean("null")
		b.ReportMetric(aird/enc, "x-ip6ip6-floor-gross")
		aird, mac, enc = aird-null, mac-null, enc-null
		b.ReportMetric(null, "harness-ns")
	}
	b.ReportMetric(aird, "ns/pkt")
	b.ReportMetric(mac, "mac-floor-ns")
	b.ReportMetric(enc, "ip6ip6-floor-ns")
	b.ReportMetric(aird/mac, "x-mac-floor")
	b.ReportMetric(aird/enc, "x-ip6ip6-floor")
	b.ReportMetric(0, "ns/op")
}

// runRepeat runs prog on a copy of pkt repeat times (the harness restores it
// in between) and returns the kernel's time per run; out, if set, gets
// the last output.
func runRepeat(b *testing.B, prog *ebpf.Program, pkt, out []byte, ifindex, repeat int) time.Duration {
	verdict, d, _ := testRunN(b, prog, bytes.Clone(pkt), out, ifindex, repeat)
	if verdict != xdpTx {
		b.Fatalf("%s (repeat %d): verdict %d, want XDP_TX; in %x", prog, repeat, verdict, pkt[:min(len(pkt), 80)])
	}
	return d
}

// lbStat sums one event counter over CPUs: pipeline_stats, or an older
// object's lb_stats (AIRD_BENCH_AB).
func lbStat(b *testing.B, e *env, s bpf.DatapathLbStat) uint64 {
	if m := e.coll.Maps[bpf.MapStats]; m != nil {
		c, err := bpf.SumPipelineCounters(m)
		if err != nil {
			b.Fatal(err)
		}
		return c.Events[s]
	}
	m := e.coll.Maps[bpf.MapEventStatsV1]
	if m == nil {
		b.Fatalf("no event counters in %v", e.coll)
	}
	var per []uint64
	if err := m.Lookup(uint32(s), &per); err != nil {
		b.Fatal(err)
	}
	var sum uint64
	for _, v := range per {
		sum += v
	}
	return sum
}

// fillConntrack fills every way of every conntrack set with a new flow
// (CT_F_NEW: one packet seen) no packet will match, so that every insert
// evicts one - the table a flood of one-packet flows leaves. (A table
// full of active established flows takes no insert at all: ct_full.)
func fillConntrack(b *testing.B, e *env) {
	const chunk = 4096
	m := e.ct
	if m.Type() != ebpf.Array {
		b.Skip("conntrack full is measured for the set-associative layout only")
	}
	keys := make([]uint32, chunk)
	sets := make([]bpf.DatapathCtSet, chunk)
	var n uint64
	for start := uint32(0); start < m.MaxEntries(); start += chunk {
		cnt := min(chunk, m.MaxEntries()-start)
		for i := range sets[:cnt] {
			keys[i] = start + uint32(i)
			for w := range sets[i].Way {
				n++
				k := bpf.NewFlowKey(netip.MustParseAddr("2001:db8:f::1"), netip.MustParseAddr("2001:db8:f::2"), uint16(n), uint16(n>>16), 6)
				binary.BigEndian.PutUint64(k.Src[8:], n)
				sets[i].Way[w] = bpf.DatapathCtEntry{Key: k, BackendId: 1, VipId: 0, LastSeen: 1, Flags: uint32(bpf.DatapathCtFlagsCT_F_NEW)}
			}
		}
		if _, err := m.BatchUpdate(keys[:cnt], sets[:cnt], nil); err != nil {
			b.Fatalf("fill conntrack: %v", err)
		}
	}
	e.inserted = 0
}
