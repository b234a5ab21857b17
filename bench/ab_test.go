package bench

import (
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
)

// envAB lists the BPF objects BenchmarkPacketAB compares with this tree's
// datapath: comma-separated paths, for example an older commit's
// bpf/datapath_bpfel.o (git show REV:bpf/datapath_bpfel.o > old.o).
const envAB = "AIRD_BENCH_AB"

// BenchmarkPacketAB: BenchmarkPacket's steady-state cases (established
// flow; a new flow's SYN; a new flow's first ACK with conntrack full; the
// uplink one-cpu)
// for this tree's datapath and for every object of AIRD_BENCH_AB, each
// loaded and programmed the same way (lb.Manager, 100 backends), run
// round by round alternately in one process, so that what the shared
// machine's load does to one does it to all. The output of every round
// is checked as in BenchmarkPacket; the harness's cost (null_xdp behind
// restore_xdp) is measured in the same rounds and subtracted. Reported
// per object (its file name): ns/pkt and x-this (its ns over this
// tree's), trimmed means. The single-shot cases (an established flow; a
// new flow's first ACK with conntrack empty) run each object once per
// round with repeat 1 (abSingle).
func BenchmarkPacketAB(b *testing.B) {
	objects := abObjects(b)
	for _, c := range []packetCase{
		{name: "established"},
		{name: "new-flow-syn", newFlow: true, syn: true},
		{name: "new-flow-ct-full", newFlow: true, ctFull: true},
		{name: "established/single-shot", single: true},
		{name: "new-flow-ct-empty/single-shot", newFlow: true, single: true},
	} {
		b.Run(c.name, func(b *testing.B) {
			ns, ifindex := newBenchNS(b)
			names := []string{"this"}
			pbs := []*packetBench{newPacketBench(b, newEnvWith(b, ns, ifindex, 1, envOptions{}))}
			for _, o := range objects {
				names = append(names, filepath.Base(o))
				pbs = append(pbs, newPacketBench(b, newEnvWith(b, ns, ifindex, 1, envOptions{object: o})))
			}
			if c.single {
				abSingle(b, c, names, pbs)
				return
			}
			abRun(b, c, names, pbs)
		})
	}
}

func abRun(b *testing.B, c packetCase, names []string, pbs []*packetBench) {
	pkt := template(b, c.syn)
	setFlow(pkt, 0, 0)
	hs := make([]abTarget, len(pbs))
	for k, pb := range pbs {
		hs[k] = pb.prepare(b, c, pkt)
	}
	plain := template(b, false)
	hNull := pbs[0].harnessFor(b, "null", pbs[0].e.floor.NullXdp, plain, false, c.newFlow)
	r := map[string]samples{}
	out := make([]byte, len(pkt)+256)
	inNetns(b, pbs[0].e.ns, func() {
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r["null"] = append(r["null"], float64(runRepeat(b, hNull, plain, nil, pbs[0].e.ifindex, steadyRepeat)))
			for k, pb := range pbs {
				r[names[k]] = append(r[names[k]], pb.steadyRound(b, hs[k].aird, pkt, out, i, c.newFlow))
			}
		}
	})
	for k, pb := range pbs {
		pb.checkEvicted(b, c, hs[k].evictBefore, uint64(b.N)*steadyRepeat)
	}
	reportAB(b, r, names)
}

// reportAB publishes, per object of names, the trimmed mean of its
// steady-state rounds net of the harness (null) and its ratio to this
// tree's (this).
func reportAB(b *testing.B, r map[string]samples, names []string) {
	_, null := r["null"].stats()
	_, this := r["this"].stats()
	for _, n := range names {
		_, m := r[n].stats()
		b.ReportMetric(m-null, n+"-ns/pkt")
		b.ReportMetric((m-null)/(this-null), n+"-x-this")
	}
	b.ReportMetric(null, "harness-ns")
	b.ReportMetric(0, "ns/op")
}

// abSingle is abRun by the single-shot method: every round runs each
// object once (repeat 1) on the same packet, a new flow's packet with the
// round's source (conntrack is emptied before, and a round's flow is new
// to every object), in turn forwards and backwards; the output of every
// run is checked. No harness: the
// fixed test-run overhead is in every object's time alike.
func abSingle(b *testing.B, c packetCase, names []string, pbs []*packetBench) {
	pkt := template(b, c.syn)
	setFlow(pkt, 0, 0)
	for _, pb := range pbs {
		pb.setUp(b, c, pkt)
	}
	r := map[string]samples{}
	out := make([]byte, len(pkt)+256)
	inNetns(b, pbs[0].e.ns, func() {
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if c.newFlow {
				setFlow(pkt, uint32(i+1), 0)
			}
			for j := range pbs {
				k := j
				if i%2 == 1 {
					k = len(pbs) - 1 - j // every other round backwards: no object always first
				}
				pb := pbs[k]
				r[names[k]] = append(r[names[k]], float64(runRepeat(b, pb.e.prog, pkt, out, pb.e.ifindex, 1)))
				pb.checkOut(b, "aird", pkt, out, pb.backendOf(pkt))
			}
		}
	})
	_, this := r["this"].stats()
	for _, n := range names {
		_, m := r[n].stats()
		b.ReportMetric(m, n+"-ns/pkt")
		b.ReportMetric(m/this, n+"-x-this")
	}
	b.ReportMetric(0, "ns/op")
}

// abTarget is one object's harness and its eviction count before the run.
type abTarget struct {
	aird        *ebpf.Program
	evictBefore uint64
}
