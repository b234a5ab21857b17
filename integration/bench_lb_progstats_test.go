package integration

import (
	"os"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

// progStatsOn turns on the kernel's BPF program statistics for the test
// when AIRD_BENCH_PROG_STATS is set: the live benchmarks then also report
// the LB's XDP program's own time per run, which tells the program's cost
// from the rest of the CPU time per packet (driver, redirect, the veth,
// the sink). Every program run then pays two clock reads more, so the
// ns/pkt of such a run are not comparable with a run without it.
func progStatsOn(t *testing.T) bool {
	t.Helper()
	if os.Getenv("AIRD_BENCH_PROG_STATS") == "" {
		return false
	}
	c, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		t.Fatalf("enable BPF program statistics: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return true
}

// xdpProgOf returns the XDP program attached to dev in ns (nil when none).
func xdpProgOf(t *testing.T, ns, dev string) *ebpf.Program {
	t.Helper()
	var id uint32
	testutil.InNetns(t, ns, func() {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			id = x.ProgId
		}
	})
	if id == 0 {
		return nil
	}
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		t.Fatalf("XDP program %d on %s: %v", id, dev, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// progSample is a program's accumulated run time and run count.
type progSample struct{ ns, runs uint64 }

func sampleProg(t *testing.T, p *ebpf.Program) progSample {
	t.Helper()
	if p == nil {
		return progSample{}
	}
	st, err := p.Stats()
	if err != nil {
		t.Fatalf("program statistics: %v", err)
	}
	return progSample{uint64(st.Runtime.Nanoseconds()), st.RunCount}
}

// nsPerRun is the program's time per run between two samples.
func nsPerRun(a, b progSample) float64 {
	if b.runs <= a.runs {
		return 0
	}
	return float64(b.ns-a.ns) / float64(b.runs-a.runs)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
