package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Where the live benchmark's time goes (TestBenchLBLive): every XDP
// program on the path - the generator's, the LB node's and the sink's -
// with the kernel's BPF statistics, which CPU the sink's program ran on,
// and optionally a kernel profile of the LB's CPU per window.

// chainWanted reports whether the LB node name is among
// AIRD_BENCH_CHAINS (comma-separated; empty: every node).
func chainWanted(name string) bool {
	v := os.Getenv("AIRD_BENCH_CHAINS")
	return v == "" || slices.Contains(strings.Split(v, ","), name)
}

// ratio is a/b, or 0 when b is not measured (a node left out).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// progSnap is what the chain's programs have done so far.
type progSnap struct {
	lb, sink, gen progSample
	sinkPerCPU    []uint64 // frames the sink counted, per CPU
}

func (c *lbChain) sampleProgs(t *testing.T, newf bool) progSnap {
	t.Helper()
	s := progSnap{lb: sampleProg(t, c.prog), sink: sampleProg(t, c.sinkProg), gen: sampleProg(t, c.gen[newf].prog)}
	if err := c.sinkCounts.Lookup(uint32(0), &s.sinkPerCPU); err != nil {
		t.Fatal(err)
	}
	return s
}

// progWindow is one window's program figures.
type progWindow struct {
	lbNS, lbRunsPerPkt float64 // the LB's program: ns per run, runs per frame delivered
	sinkNS, sinkOnLB   float64 // the sink's program: ns per run, share of its runs on the LB's CPU
	genNS              float64 // the generator's program, ns per run (on the other CPU)
}

func progWindowOf(a, b progSnap, w window, lbCPU int) progWindow {
	p := progWindow{lbNS: nsPerRun(a.lb, b.lb), sinkNS: nsPerRun(a.sink, b.sink), genNS: nsPerRun(a.gen, b.gen)}
	if w.delivered > 0 {
		p.lbRunsPerPkt = float64(b.lb.runs-a.lb.runs) / float64(w.delivered)
	}
	var all, onLB uint64
	for cpu := range b.sinkPerCPU {
		d := b.sinkPerCPU[cpu] - a.sinkPerCPU[cpu]
		all += d
		if cpu == lbCPU {
			onLB += d
		}
	}
	if all > 0 {
		p.sinkOnLB = float64(onLB) / float64(all)
	}
	return p
}

// medianProgWindow is the median of each figure over the rounds.
func medianProgWindow(ps []progWindow) progWindow {
	pick := func(f func(progWindow) float64) float64 {
		var v []float64
		for _, p := range ps {
			v = append(v, f(p))
		}
		return median(v)
	}
	return progWindow{
		lbNS:         pick(func(p progWindow) float64 { return p.lbNS }),
		lbRunsPerPkt: pick(func(p progWindow) float64 { return p.lbRunsPerPkt }),
		sinkNS:       pick(func(p progWindow) float64 { return p.sinkNS }),
		sinkOnLB:     pick(func(p progWindow) float64 { return p.sinkOnLB }),
		genNS:        pick(func(p progWindow) float64 { return p.genNS }),
	}
}

// String reports p against the window's ns/pkt: the LB's program, the
// sink's program (as much of it as ran on the LB's CPU) and the rest.
func (p progWindow) String(nsPerPkt float64) string {
	rest := nsPerPkt - p.lbNS*p.lbRunsPerPkt - p.sinkNS*p.sinkOnLB
	return fmt.Sprintf("LB program %4.0f ns/run (%.2f runs/pkt), sink program %3.0f ns/run (%3.0f%% on the LB's CPU), the rest %4.0f ns/pkt; generator program %3.0f ns/run",
		p.lbNS, p.lbRunsPerPkt, p.sinkNS, 100*p.sinkOnLB, rest, p.genNS)
}

// perfRecord profiles cpu (perf record, cpu-clock with call chains: this
// VM has no hardware counters) into dir/name.data until the returned stop
// is called, which returns where the NAPI threads' samples fell.
func perfRecord(t *testing.T, dir, name string, cpu int) (stop func() perfSplit) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+".data")
	cmd := exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-F", "5000", "-g", "-C", strconv.Itoa(cpu), "-o", out)
	if err := cmd.Start(); err != nil {
		t.Fatalf("perf record (AIRD_BENCH_PERF needs perf: apt-get install linux-perf): %v", err)
	}
	time.Sleep(300 * time.Millisecond) // perf is recording
	return func() perfSplit {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		script, err := exec.Command("perf", "script", "-i", out, "-F", "comm,tid,ip,sym").Output()
		if err != nil {
			t.Fatalf("perf script %s: %v", out, err)
		}
		return splitNAPISamples(string(script))
	}
}

// The parts of the LB's CPU time per frame, from the NAPI threads'
// samples: the LB node's uplink poll (its own NAPI thread) and, in
// softirq on the same thread when the uplink's poll ends, the sink's poll.
const (
	partRx          = iota // the LB's uplink: the veth ring, the frame, the poll loop
	partProgram            // the LB's XDP program and the helpers it calls
	partXmit               // the redirect: bulk queue, the veth transmit into the sink's ring
	partClock              // clock reads (the BPF statistics, when on)
	partSinkRx             // the sink's poll
	partSinkProgram        // the sink's counting XDP program
	partSinkReturn         // the sink returns the frame to the generator's page pool
	partCount
)

var partNames = [partCount]string{"rx", "program", "redirect+xmit", "clock", "sink rx", "sink program", "sink frame return"}

// perfSplit counts the NAPI threads' samples per part.
type perfSplit [partCount]float64

// splitNAPISamples classifies perf script's samples (comm, tid, then the
// call chain leaf first) of the kernel's NAPI threads.
func splitNAPISamples(script string) perfSplit {
	var s perfSplit
	for _, block := range strings.Split(script, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[0], "napi/") {
			continue
		}
		var syms []string
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) >= 2 {
				syms = append(syms, f[1])
			}
		}
		s[classifySample(syms)]++
	}
	return s
}

func classifySample(syms []string) int {
	has := func(prefixes ...string) bool {
		for _, sym := range syms {
			for _, p := range prefixes {
				if strings.HasPrefix(sym, p) {
					return true
				}
			}
		}
		return false
	}
	sink := has("net_rx_action") // the sink's poll runs as softirq on the LB's thread
	switch {
	case len(syms) > 0 && (strings.Contains(syms[0], "clock") || strings.HasPrefix(syms[0], "ktime_get")):
		return partClock
	case has("bpf_prog_"):
		if sink {
			return partSinkProgram
		}
		return partProgram
	case sink && has("page_pool_", "__xdp_return", "xdp_return_frame"):
		return partSinkReturn
	case sink:
		return partSinkRx
	case has("xdp_do_redirect", "xdp_do_flush", "bq_xmit_all", "bq_enqueue", "veth_xdp_xmit", "dev_map_", "__dev_flush"):
		return partXmit
	}
	return partRx
}

// sumSplit is each part's share of the samples of every round together
// (a round's NAPI samples can be few on a loaded machine), and how many.
func sumSplit(ss []perfSplit) (m perfSplit, samples float64) {
	var sum perfSplit
	for _, s := range ss {
		for p, n := range s {
			sum[p] += n
			samples += n
		}
	}
	if samples > 0 {
		for p := range sum {
			m[p] = sum[p] / samples
		}
	}
	return m, samples
}

// String shows the shares as ns per frame of nsPerPkt, and the LB's own
// part (everything but the sink's poll).
func (m perfSplit) String(nsPerPkt float64) string {
	var parts []string
	var lb float64
	for p := range partCount {
		parts = append(parts, fmt.Sprintf("%s %.0f", partNames[p], m[p]*nsPerPkt))
		if p < partSinkRx {
			lb += m[p] * nsPerPkt
		}
	}
	return fmt.Sprintf("LB alone %.0f ns/pkt = %s ns/pkt", lb, strings.Join(parts, ", "))
}

// batchSize is the live frames' batch (BPF_PROG_TEST_RUN): 256, or
// AIRD_BENCH_BATCH.
func (g *generator) batchSize() uint32 {
	if v, err := strconv.Atoi(os.Getenv("AIRD_BENCH_BATCH")); err == nil && v > 0 {
		return uint32(v)
	}
	return 256
}
