package bench

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/bpf"
)

// ctCPUCounts are the CPU counts BenchmarkCrossCPU partitions conntrack
// for.
var ctCPUCounts = []int{2, 8, 32, 64, 128}

// BenchmarkCrossCPU: the first packet of a new flow (a TCP SYN, the
// handshake's ACK after its unmeasured SYN, a first UDP datagram) while
// conntrack is partitioned for cpus CPUs, received on an uplink listed
// as any-cpu (veth) or one-cpu (a NIC with RSS: UPLINK_F_FLOW_AFFINE).
// On an any-cpu uplink the SYN empties its tuple's entries in the other
// cpus-1 partitions (ct_forget_elsewhere), the ACK and the datagram miss
// here and search them (ct_lookup_elsewhere) before the table and the
// insert; on a one-cpu uplink neither step runs. The datapath is loaded with ct_cpus and the
// conntrack map set as the daemon sets them on a machine with that many
// possible CPUs (lb.conntrack-size flows in all, split evenly), so the
// partitions walked are real memory; only CPU 0's receives packets. The
// baseline is the same datapath partitioned for one CPU (no other
// partition: neither step runs), measured alternately with it and with
// the floor program. Reported: ns/pkt, base-ns/pkt, floor-ns/pkt,
// x-base, x-floor and extra-ns/pkt (ns/pkt - base-ns/pkt, trimmed means).
func BenchmarkCrossCPU(b *testing.B) {
	for _, k := range []struct {
		name  string
		start flowStart
	}{{"syn", startSYN}, {"ack", startACK}, {"udp", startUDP}} {
		for _, n := range ctCPUCounts {
			for _, link := range []string{"any-cpu", "one-cpu"} {
				b.Run(fmt.Sprintf("%s/cpus=%d/%s", k.name, n, link), func(b *testing.B) {
					proto := "tcp"
					if k.start == startUDP {
						proto = "udp"
					}
					anyCPU := link == "any-cpu"
					ns, ifindex := newBenchNS(b)
					e := newEnvWith(b, ns, ifindex, 1, envOptions{ctCPUs: n, anyCPU: anyCPU}, proto)
					base := newEnvWith(b, ns, ifindex, 1, envOptions{ctCPUs: 1, anyCPU: anyCPU}, proto)
					checkFarPartition(b, e, n, proto, anyCPU)
					crossFlows(b, e, base, k.start)
				})
			}
		}
	}
}

// partitionCT sets spec's per-CPU conntrack (ct_cpus, ct_sets and the
// map's size) as configureConntrack does on a machine with cpus possible
// CPUs, size flows in all. The benchmark runs on the first CPU the
// process may use, which must be one the partitions cover.
func partitionCT(b testing.TB, spec *ebpf.CollectionSpec, size uint32, cpus int) {
	b.Helper()
	sets, ncpus := spec.Variables[bpf.DatapathVarCtSets], spec.Variables[bpf.DatapathVarCtCpus]
	if sets == nil || ncpus == nil || spec.Maps[bpf.ConntrackMapName(spec)].Type != ebpf.Array {
		b.Fatal("partition conntrack: the object has no per-CPU sets layout")
	}
	if first := firstAllowedCPU(b); first >= cpus {
		b.Fatalf("partition conntrack for %d CPUs: the benchmark runs on CPU %d", cpus, first)
	}
	per := max(size/4/uint32(cpus), 1)
	must(b, sets.Set(per))
	must(b, ncpus.Set(uint32(cpus)))
	spec.Maps[bpf.ConntrackMapName(spec)].MaxEntries = per * uint32(cpus)
}

// firstAllowedCPU is the CPU inNetns pins to.
func firstAllowedCPU(b testing.TB) int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		b.Fatal(err)
	}
	for c := range 1024 {
		if set.IsSet(c) {
			return c
		}
	}
	b.Fatal("empty affinity mask")
	return 0
}

// checkFarPartition shows that the search reaches the last of the cpus
// partitions on an any-cpu uplink, and that it does not run on a one-cpu
// one: a flow's entry (its first packet, an ACK or a datagram of proto)
// moved there from CPU 0's partition is found by the flow's next packet on
// CPU 0 (ct_hit_elsewhere), or not at all.
func checkFarPartition(b *testing.B, e *env, cpus int, proto string, anyCPU bool) {
	if cpus < 2 || firstAllowedCPU(b) != 0 {
		return
	}
	pkt := template(b, false)
	if proto == "udp" {
		pkt[14+6] = 17
	}
	setFlow(pkt, 7, 0)
	e.resetCT(b)
	inNetns(b, e.ns, func() { runOnce(b, e.prog, pkt, e.ifindex, xdpTx) })
	var at uint32
	var set [256]byte
	found := 0
	err := bpf.ReadArray(e.ct, func(k uint32, v *[256]byte) {
		if *v != [256]byte{} {
			at, set = k, *v
			found++
		}
	})
	must(b, err)
	if found != 1 {
		b.Fatalf("one tracked flow fills %d conntrack sets, want 1", found)
	}
	per := e.ct.MaxEntries() / uint32(cpus)
	if at >= per {
		b.Fatalf("the flow tracked on CPU 0 is in set %d, beyond CPU 0's partition of %d", at, per)
	}
	must(b, e.ct.Put(at+uint32(cpus-1)*per, set))
	must(b, e.ct.Put(at, [256]byte{}))
	before := lbStat(b, e, bpf.DatapathLbStatLB_STAT_CT_HIT_ELSEWHERE)
	inNetns(b, e.ns, func() { runOnce(b, e.prog, pkt, e.ifindex, xdpTx) })
	found = int(lbStat(b, e, bpf.DatapathLbStatLB_STAT_CT_HIT_ELSEWHERE) - before)
	switch {
	case anyCPU && found != 1:
		b.Fatalf("any-cpu uplink: the flow's entry in CPU %d's partition was not found from CPU 0", cpus-1)
	case !anyCPU && found != 0:
		b.Fatalf("one-cpu uplink: the other CPUs' partitions were searched (%d ct_hit_elsewhere)", found)
	}
	e.resetCT(b)
}

// crossFlows is newFlows over two datapaths: each iteration a new flow's
// first packet of kind k goes through the floor, base and e, alternately,
// on CPU 0 (the flow's SYN, for startACK, before it, unmeasured).
func crossFlows(b *testing.B, e, base *env, k flowStart) {
	pkt := template(b, k == startSYN)
	syn := template(b, true)
	if k == startUDP {
		pkt[14+6] = 17 // UDP: the ports are where TCP's are
	}
	floorPkt := template(b, false)
	var fl, bs, lb samples
	e.resetCT(b)
	base.resetCT(b)
	var flow uint32
	inNetns(b, e.ns, func() {
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, x := range []*env{e, base} {
				if x.inserted >= x.ctShare/4 {
					b.StopTimer()
					x.resetCT(b)
					b.StartTimer()
				}
			}
			flow++
			setFlow(pkt, flow, 0)
			setFlow(syn, flow, 0)
			fl = append(fl, float64(runOnce(b, e.floor.FloorXdp, floorPkt, e.ifindex, xdpTx)))
			for _, x := range []*env{base, e} {
				if k == startACK {
					runOnce(b, x.prog, syn, x.ifindex, xdpTx)
				}
				d := float64(runOnce(b, x.prog, pkt, x.ifindex, xdpTx))
				if x == e {
					lb = append(lb, d)
				} else {
					bs = append(bs, d)
				}
				x.inserted++
			}
		}
	})
	_, lbT := lb.stats()
	_, bsT := bs.stats()
	_, flT := fl.stats()
	b.ReportMetric(lbT, "ns/pkt")
	b.ReportMetric(bsT, "base-ns/pkt")
	b.ReportMetric(flT, "floor-ns/pkt")
	b.ReportMetric(lbT/bsT, "x-base")
	b.ReportMetric(lbT/flT, "x-floor")
	b.ReportMetric(lbT-bsT, "extra-ns/pkt")
	b.ReportMetric(0, "ns/op")
}
