package bpf

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"
)

// ctSet is a test's view of one conntrack set: the flows that land in it
// (on the CPU the tests run on) and how to read it.
type ctSet struct {
	e     *lbEnv
	index uint32
	ports []uint16 // client6 ports to vip6:443 whose flows land in the set
}

// findSet returns the set of client6:first -> vip6:443 and n ports whose
// flows share it.
func findSet(t *testing.T, e *lbEnv, first uint16, n int) *ctSet {
	t.Helper()
	var sets uint32
	if err := e.objs.Constants.CtSets.Get(&sets); err != nil {
		t.Fatal(err)
	}
	cpu := firstCPU(t)
	idx := func(p uint16) uint32 {
		return ConntrackIndex(ConntrackHash(ptrKey(key6(p, 443, layers.IPProtocolTCP))), cpu, sets)
	}
	s := &ctSet{e: e, index: idx(first), ports: []uint16{first}}
	for p := first + 1; len(s.ports) < n; p++ {
		if idx(p) == s.index {
			s.ports = append(s.ports, p)
		}
	}
	return s
}

// held returns the client ports of the set's ways and whether each is new.
func (s *ctSet) held(t *testing.T) map[uint16]bool {
	t.Helper()
	var set DatapathCtSet
	if err := s.e.objs.LB.Conntrack.Lookup(s.index, &set); err != nil {
		t.Fatal(err)
	}
	out := map[uint16]bool{}
	for _, w := range set.Way {
		if w.LastSeen != 0 {
			out[Ntohs(w.Key.Sport)] = w.Flags&uint32(DatapathCtFlagsCT_F_NEW) != 0
		}
	}
	return out
}

// sendDelta sends r and checks the verdict, output and counter deltas.
func (e *lbEnv) sendDelta(t *testing.T, r result, want st) {
	t.Helper()
	before := e.snap(t)
	v, out := e.run(t, r.in, true)
	after := e.snap(t)
	if v != xdpTx || !bytes.Equal(out, r.want) {
		t.Fatalf("verdict %d, output\n got  %x\n want %x", v, out, r.want)
	}
	checkDeltas(t, before, after, want, nil)
}

// TestConntrackNewEntriesReplaceEachOther: flows seen once (what spoofed
// packets create) take empty ways and then replace each other, the least
// recently seen first; the one replaced misses and takes the table again.
func TestConntrackNewEntriesReplaceEachOther(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	s := findSet(t, e, 30000, 5)
	for _, p := range s.ports[:4] {
		e.sendDelta(t, tcp6Flow(p, 443, ack, 1)(t, e), newFlow)
		time.Sleep(tick) // a later jiffy: the first is the least recently seen
	}
	e.sendDelta(t, tcp6Flow(s.ports[4], 443, ack, 1)(t, e), st{ctMiss: 1, ctInsert: 1, sTX: 1, DatapathLbStatLB_STAT_CT_EVICT: 1})
	held := s.held(t)
	if _, ok := held[s.ports[0]]; ok || len(held) != 4 {
		t.Fatalf("set %d holds %v; want ports %v without the oldest", s.index, held, s.ports[1:])
	}
	e.sendDelta(t, tcp6Flow(s.ports[0], 443, ack, 1)(t, e), st{ctMiss: 1, ctInsert: 1, sTX: 1, DatapathLbStatLB_STAT_CT_EVICT: 1})
}

// TestConntrackEstablishedNotEvicted: a set of four established flows
// takes no new flow (balanced by the table, counted ct_full); neither SYNs
// nor one-packet flows to the same set change it, and after a table change
// every established flow still meets its backend. Only an established flow
// idle for the conntrack idle time makes room.
func TestConntrackEstablishedNotEvicted(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	s := findSet(t, e, 31000, 64)
	est := s.ports[:4]
	for _, p := range est {
		e.sendDelta(t, tcp6Flow(p, 443, syn, 1)(t, e), newSYN)
		e.sendDelta(t, tcp6Flow(p, 443, ack, 1)(t, e), newFlow)
		e.sendDelta(t, tcp6Flow(p, 443, ack, 1)(t, e), st{ctHit: 1, ctPromo: 1, sTX: 1})
	}
	backendOf := map[uint16]uint32{}
	for _, p := range est {
		backendOf[p] = e.initialBackend(t, 1, key6(p, 443, layers.IPProtocolTCP))
	}
	full := st{ctMiss: 1, DatapathLbStatLB_STAT_CT_FULL: 1, sTX: 1}
	e.sendDelta(t, tcp6Flow(s.ports[4], 443, ack, 1)(t, e), full)

	// A flood into this very set: SYNs and one-packet flows of 60 other
	// tuples, then random spoofed SYNs all over the table.
	for _, p := range s.ports[4:] {
		e.sendDelta(t, tcp6Flow(p, 443, syn, 1)(t, e), newSYN)
		e.sendDelta(t, tcp6Flow(p, 443, ack, 1)(t, e), full)
	}
	before := e.conntrackBytes(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		src := netip.MustParseAddr("2001:db8:c0::").As16()
		binary.BigEndian.PutUint64(src[8:], rng.Uint64())
		l3 := ip6(netip.AddrFrom16(src).String(), vip6, layers.IPProtocolTCP, 64)
		in := fromTor(ipPacket(t, l3, tcpL(l3, uint16(rng.Uint32()), 443, syn)))
		if v, _ := e.run(t, in, true); v != xdpTx {
			t.Fatalf("spoofed syn: verdict %d", v)
		}
	}
	if !bytes.Equal(before, e.conntrackBytes(t)) {
		t.Fatal("3000 spoofed SYNs changed the conntrack table")
	}
	held := s.held(t)
	for _, p := range est {
		if isNew, ok := held[p]; !ok || isNew {
			t.Fatalf("established flow %d gone from set %d (held %v)", p, s.index, held)
		}
	}
	// Every established flow keeps its backend, even with the table changed.
	e.withTable(t, 1, spreadTable(6, 5, 4, 3, 2, 1))
	for _, p := range est {
		e.sendDelta(t, tcp6To(p, 443, ack, backendOf[p])(t, e), st{ctHit: 1, sTX: 1})
		time.Sleep(tick)
	}

	// Idle for longer than the conntrack idle time (here one tick), the
	// least recently seen established flow makes room for a new one.
	idle := e.settings
	idle.ConntrackIdle = time.Nanosecond
	e.withSettings(t, idle)
	time.Sleep(50 * time.Millisecond)
	e.sendDelta(t, tcp6Flow(s.ports[4], 443, ack, 1)(t, e), st{ctMiss: 1, ctInsert: 1, sTX: 1, DatapathLbStatLB_STAT_CT_EVICT: 1})
	if _, ok := s.held(t)[est[0]]; ok {
		t.Fatalf("the least recently seen established flow %d is still held: %v", est[0], s.held(t))
	}
}

// tick is longer than a jiffy at any HZ (10 ms at HZ=100).
const tick = 12 * time.Millisecond

// conntrackBytes is the whole conntrack table as bytes.
func (e *lbEnv) conntrackBytes(t *testing.T) []byte {
	t.Helper()
	var out bytes.Buffer
	var set DatapathCtSet
	for i := range e.objs.LB.Conntrack.MaxEntries() {
		if err := e.objs.LB.Conntrack.Lookup(i, &set); err != nil {
			t.Fatal(err)
		}
		if err := binary.Write(&out, binary.LittleEndian, &set); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// TestConntrackFloodCounted: new flows beyond settings' flood threshold in
// one second on one CPU are counted as ct_flood; established traffic is
// not.
func TestConntrackFloodCounted(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	s := e.settings
	s.FloodThreshold = 10
	e.withSettings(t, s)
	for p := range uint16(3) {
		e.send(t, tcp6Flow(20000+p, 443, ack, 1)(t, e))
		e.send(t, tcp6Flow(20000+p, 443, ack, 1)(t, e))
	}
	// A burst of 30 new flows (and established packets in between) in a
	// fresh window, within a second: 20 beyond the threshold. A burst that
	// a busy machine stretched past the window is tried again.
	var before, after snapshot
	for attempt := 0; ; attempt++ {
		time.Sleep(1100 * time.Millisecond) // a new window starts with the burst
		before = e.snap(t)
		start := time.Now()
		for p := range uint16(30) {
			e.send(t, tcp6Flow(21000+p, 443, syn, 1)(t, e))
			e.send(t, tcp6Flow(20000+p%3, 443, ack, 1)(t, e)) // established: not a new flow
		}
		after = e.snap(t)
		if time.Since(start) < 900*time.Millisecond {
			break
		}
		if attempt == 4 {
			t.Fatal("five bursts of 60 packets each took longer than a second")
		}
	}
	if d := after.stats[DatapathLbStatLB_STAT_CT_FLOOD] - before.stats[DatapathLbStatLB_STAT_CT_FLOOD]; d != 20 {
		t.Errorf("ct_flood grew by %d for 30 new flows at a threshold of 10 per second, want 20", d)
	}
	if d := after.stats[ctSyn] - before.stats[ctSyn]; d != 30 {
		t.Errorf("ct_syn grew by %d, want 30", d)
	}
}

// TestConntrackSetIndex: a flow is tracked in the set ConntrackIndex
// names, whether the sets per CPU are a power of two (the data path
// masks) or not (it divides).
func TestConntrackSetIndex(t *testing.T) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	for _, perCPU := range []uint32{512, 100} {
		t.Run(itoa(uint64(perCPU))+" sets per cpu", func(t *testing.T) {
			e := newLBEnvWith(t, Config{MaxVIPs: 64, MaxBackends: bigBackendID, ConntrackSize: 4 * perCPU * uint32(cpus)})
			programLB(t, e)
			var sets uint32
			e.must(t, e.objs.Constants.CtSets.Get(&sets))
			if sets != perCPU {
				t.Fatalf("ct_sets %d, want %d", sets, perCPU)
			}
			for p := uint16(31000); p < 31040; p++ {
				onFirstCPU(t, func() { e.send(t, tcp6Flow(p, 443, ack, 1)(t, e)) })
				s := &ctSet{e: e, index: ConntrackIndex(ConntrackHash(ptrKey(key6(p, 443, layers.IPProtocolTCP))), firstCPU(t), sets)}
				if _, ok := s.held(t)[p]; !ok {
					t.Fatalf("flow from port %d is not in set %d", p, s.index)
				}
			}
		})
	}
}

// TestConntrackSYNSummary: a SYN reads its conntrack set only when the
// set's ct_tags word may hold its flow, so every write of a way must keep
// the word true. Four flows share one set; each SYN of a flow not yet
// tracked finds the word up to date (a SYN earlier made it, then every
// insert rewrote it) and creates nothing; then a SYN of each tracked
// tuple (a reused port) must still find and rewrite its entry
// (ct_insert), and a fifth tuple of the same set must not. After the
// control plane empties conntrack (the words keep their tags), a SYN of a
// formerly tracked tuple finds nothing and writes nothing.
func TestConntrackSYNSummary(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	s := findSet(t, e, 32000, 5)
	for _, p := range s.ports {
		e.sendDelta(t, tcp6Flow(p, 443, syn, 1)(t, e), newSYN)
	}
	for i, p := range s.ports[:4] {
		e.sendDelta(t, tcp6Flow(p, 443, ack, 1)(t, e), newFlow)
		e.sendDelta(t, tcp6Flow(p, 443, ack, 1)(t, e), st{ctHit: 1, ctPromo: 1, sTX: 1})
		for _, q := range s.ports[i+1:] { // the word now says which ways hold what
			e.sendDelta(t, tcp6Flow(q, 443, syn, 1)(t, e), newSYN)
		}
	}
	reused := st{ctMiss: 1, ctSyn: 1, ctInsert: 1, sTX: 1}
	for _, p := range s.ports[:4] {
		e.sendDelta(t, tcp6Flow(p, 443, syn, 1)(t, e), reused)
	}
	e.sendDelta(t, tcp6Flow(s.ports[4], 443, syn, 1)(t, e), newSYN)
	if held := s.held(t); len(held) != 4 {
		t.Fatalf("set %d holds %v; want the four tracked ports %v", s.index, held, s.ports[:4])
	}
	e.resetFlows(t)
	for _, p := range s.ports[:4] {
		e.sendDelta(t, tcp6Flow(p, 443, syn, 1)(t, e), newSYN)
	}
	e.sendDelta(t, tcp6Flow(s.ports[0], 443, ack, 1)(t, e), newFlow)
	e.sendDelta(t, tcp6Flow(s.ports[0], 443, syn, 1)(t, e), reused)
}
