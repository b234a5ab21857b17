package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/lb"
)

// Flood benchmark sizes (AIRD_BENCH_FLOOD_SIZE scales both: "1" is the
// default; bench/ct-flood.sh passes it through).
const (
	floodEstablished = 100_000   // established flows to vip 0
	floodPackets     = 1_000_000 // spoofed packets per flood
	floodEvery       = 10        // one established packet per this many spoofed ones
	floodNewFlows    = 20_000    // legitimate new flows measured with and without flood
)

func floodScale(b testing.TB) float64 {
	v := os.Getenv("AIRD_BENCH_FLOOD_SIZE")
	if v == "" {
		return 1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		b.Fatalf("AIRD_BENCH_FLOOD_SIZE=%q", v)
	}
	return f
}

// BenchmarkFlood: with floodEstablished flows established to one VIP, a
// flood of floodPackets spoofed packets (random source address and port)
// runs through the program, one packet of an established flow after every
// floodEvery of them (those flows stay active), in ten rounds alternating
// with rounds of legitimate new flows alone. Then the VIP's Maglev
// table is replaced by one over other backends (the old ones stay valid,
// in a second service), so the table would send every flow elsewhere: a
// flow still reaching its first backend was kept by conntrack. Reported:
//
//	kept-%           established flows (tracked when the flood began) that
//	                 kept their backend
//	untracked-%      established flows not tracked when the flood began:
//	                 their conntrack set held four others (ct_full)
//	flood-ns/pkt     a spoofed packet (the core's capacity under flood is
//	                 1e9 / this)
//	newflow-ns       a legitimate new flow's SYN + handshake ACK, without
//	                 a flood, and newflow-flood-ns amid the flood
//	newflow-capacity-ratio  new flows per second under flood / without
//
// Sub-benchmarks: syn (a SYN flood) and ack (one-packet flows without SYN,
// an ACK flood). Use -benchtime 1x: one iteration is the whole scenario.
func BenchmarkFlood(b *testing.B) {
	b.Run("syn", func(b *testing.B) { flood(b, true) })
	b.Run("ack", func(b *testing.B) { flood(b, false) })
}

func flood(b *testing.B, syn bool) {
	scale := floodScale(b)
	nEst, nFlood, nNew := int(floodEstablished*scale), int(floodPackets*scale), int(floodNewFlows*scale)
	e := newFloodEnv(b)
	backendOf := make([]netip.Addr, nEst)
	trackedAtStart := make([]bool, nEst)
	var kept, tracked int
	var floodNS, newNS, newFloodNS, floorNS samples
	for range b.N {
		inNetns(b, e.ns, func() {
			// Established flows: SYN, the handshake's ACK, one more.
			for i := range nEst {
				backendOf[i] = e.establish(b, uint32(i))
			}
			// A few flows share a set with four others and are never
			// tracked (ct_full): the flood cannot be blamed for them.
			for i := range nEst {
				trackedAtStart[i] = e.established(b, uint32(i))
			}
			floorPkt := template(b, false)
			legit := uint32(1 << 30)
			newFlow := func() float64 {
				legit++
				synPkt, ackPkt := template(b, true), template(b, false)
				setFlow(synPkt, legit, 0)
				setFlow(ackPkt, legit, 0)
				d := runOnce(b, e.prog, synPkt, e.ifindex, xdpTx)
				return float64(d + runOnce(b, e.prog, ackPkt, e.ifindex, xdpTx))
			}
			// Ten rounds of: legitimate new flows alone, then the flood
			// with as many legitimate new flows in it; alternating keeps
			// machine load from favouring either.
			rng := rand.New(rand.NewPCG(uint64(nFlood), 7))
			spoofed := template(b, syn)
			est := template(b, false)
			const rounds = 10
			perRound := nFlood / rounds
			newEvery := max(1, nFlood/nNew)
			for r := range rounds {
				for range nNew / rounds {
					floorNS = append(floorNS, float64(runOnce(b, e.floor.FloorXdp, floorPkt, e.ifindex, xdpTx)))
					newNS = append(newNS, newFlow())
				}
				for j := range perRound {
					i := r*perRound + j
					binary.BigEndian.PutUint64(spoofed[14+8+8:], rng.Uint64()) // source address, low 64 bits
					binary.BigEndian.PutUint16(spoofed[offSport:], uint16(rng.Uint32()))
					floodNS = append(floodNS, float64(runOnce(b, e.prog, spoofed, e.ifindex, xdpTx)))
					if i%floodEvery == 0 {
						setFlow(est, uint32(i/floodEvery%nEst), 0)
						runOnce(b, e.prog, est, e.ifindex, xdpTx)
					}
					if i%newEvery == 0 {
						newFloodNS = append(newFloodNS, newFlow())
					}
				}
			}
		})
		// Another table for vip 0; the old backends stay in vip 1.
		e.moveTable(b)
		inNetns(b, e.ns, func() {
			est := template(b, false)
			for i := range nEst {
				if !trackedAtStart[i] {
					continue
				}
				tracked++
				setFlow(est, uint32(i), 0)
				if e.backendOf(b, est) == backendOf[i] {
					kept++
				}
			}
		})
	}
	_, fl := floorNS.stats()
	_, fn := floodNS.stats()
	_, nn := newNS.stats()
	_, nf := newFloodNS.stats()
	b.ReportMetric(100*float64(kept)/float64(tracked), "kept-%")
	b.ReportMetric(100*float64(nEst*b.N-tracked)/float64(nEst*b.N), "untracked-%")
	b.ReportMetric(fn, "flood-ns/pkt")
	b.ReportMetric(fn/fl, "flood-x-floor")
	b.ReportMetric(nn, "newflow-ns")
	b.ReportMetric(nf, "newflow-flood-ns")
	b.ReportMetric(nn/nf, "newflow-capacity-ratio")
	b.ReportMetric(fl, "floor-ns/pkt")
	b.ReportMetric(0, "ns/op")
}

// floodEnv is a datapath with two services over the same 100 backends:
// vip 0 takes the traffic, vip 1 keeps the backends in use when vip 0's
// table moves to 100 others.
type floodEnv struct {
	*env
	m *lb.Manager
}

func newFloodEnv(b testing.TB) *floodEnv {
	e := &floodEnv{env: newEnv(b, 0)}
	e.m = newManager(b, e.lbMaps)
	must(b, e.m.Apply(lb.Config{Services: []lb.Service{e.service(0, 1), e.service(1, 1)}}))
	return e
}

// service is vip v's service over backends first..first+99.
func (e *floodEnv) service(v, first int) lb.Service {
	backends := make([]lb.Backend, nBackends)
	for i := range backends {
		backends[i] = lb.Backend{Address: netip.MustParseAddr(fmt.Sprintf("2001:db8:be::%x", first+i)), Weight: 100}
	}
	return lb.Service{Name: fmt.Sprintf("vip%d", v), VIP: vipAddr(v), Port: 443, Protocol: "tcp",
		Backends: backends, HealthCheck: lb.HealthCheck{Type: "none"}}
}

func (e *floodEnv) moveTable(b testing.TB) {
	must(b, e.m.Apply(lb.Config{Services: []lb.Service{e.service(0, 1+nBackends), e.service(1, 1)}}))
}

// establish makes flow n to vip 0 established and returns its backend.
func (e *floodEnv) establish(b testing.TB, n uint32) netip.Addr {
	syn, ack := template(b, true), template(b, false)
	setFlow(syn, n, 0)
	setFlow(ack, n, 0)
	runOnce(b, e.prog, syn, e.ifindex, xdpTx)
	runOnce(b, e.prog, ack, e.ifindex, xdpTx)
	return e.backendOf(b, ack)
}

// established reports whether flow n to vip 0 is an established entry of
// this CPU's conntrack.
func (e *floodEnv) established(b testing.TB, n uint32) bool {
	pkt := template(b, false)
	setFlow(pkt, n, 0)
	src, _ := netip.AddrFromSlice(pkt[14+8 : 14+24])
	k := bpf.NewFlowKey(src, vipAddr(0), binary.BigEndian.Uint16(pkt[offSport:]), 443, 6)
	var sets uint32
	must(b, e.coll.Variables[bpf.DatapathVarCtSets].Get(&sets))
	idx := bpf.ConntrackIndex(bpf.ConntrackHash(&k), uint32(e.cpu(b)), sets)
	var set bpf.DatapathCtSet
	must(b, e.ct.Lookup(idx, &set))
	for _, w := range set.Way {
		if w.LastSeen != 0 && w.Key == k && w.Flags&uint32(bpf.DatapathCtFlagsCT_F_NEW) == 0 {
			return true
		}
	}
	return false
}

// cpu is the CPU inNetns runs on.
func (e *floodEnv) cpu(b testing.TB) int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		b.Fatal(err)
	}
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			return c
		}
	}
	b.Fatal("empty CPU affinity")
	return 0
}

// backendOf runs pkt and returns the outer destination of the
// encapsulated packet.
func (e *floodEnv) backendOf(b testing.TB, pkt []byte) netip.Addr {
	_, out := runOut(b, e.prog, pkt, e.ifindex, xdpTx)
	return netip.AddrFrom16([16]byte(out[14+24 : 14+40]))
}

// runOut is runOnce that also returns the output frame.
func runOut(b testing.TB, prog *ebpf.Program, pkt []byte, ifindex int, want uint32) (time.Duration, []byte) {
	verdict, d, out := testRun(b, prog, pkt, make([]byte, len(pkt)+256), ifindex)
	if verdict != want {
		b.Fatalf("verdict %d, want %d", verdict, want)
	}
	return d, out
}
