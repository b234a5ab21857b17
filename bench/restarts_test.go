package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// restartsOnly (AIRD_BENCH_LAYOUT=restarts) measures restarts alone,
// several per build in one session: one cold start, then restarts that
// adopt the pins, alternating between the binaries AIRD_BENCH_AIRD lists
// (comma-separated; default this tree's), AIRD_BENCH_RESTARTS (3) of
// each. Each binary has a state directory of its own, so that it reads
// its own configuration snapshot (the snapshot is keyed by the build);
// the first restart of a binary other than the cold start's parses the
// file to make it and is not counted. It reports, per binary k (0, 1,
// ... in the list's order), the median READY and CPU time to READY, the
// page faults up to READY (minflt: on the test VM a fault on fresh
// memory costs 20-30 µs) and the peak RSS at READY, and logs each
// restart.
func (d *benchDaemon) restartsOnly() {
	bins := strings.Split(os.Getenv("AIRD_BENCH_AIRD"), ",")
	if bins[0] == "" {
		bins = []string{d.aird}
	}
	n := 3
	if v := os.Getenv("AIRD_BENCH_RESTARTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			d.b.Fatalf("AIRD_BENCH_RESTARTS=%q: want a positive number", v)
		}
	}
	d.aird, d.state = bins[0], "state-0"
	d.writeConfig(nil, 80)
	d.start()
	figs := make([][]restartFigures, len(bins))
	for round := range n + 1 {
		for k, bin := range bins {
			if round == 0 && k == 0 {
				continue // the cold start made its snapshot
			}
			d.stopForRestart()
			d.aird, d.state = bin, fmt.Sprintf("state-%d", k)
			f := d.measuredRestart()
			d.b.Logf("%s restart %s: READY %.2f s, %.2f s of CPU, %d page faults, peak RSS %.0f MB",
				time.Now().UTC().Format("15:04:05"), bin, f.ready.Seconds(), f.cpu, f.faults, f.peak/(1<<20))
			if round > 0 {
				figs[k] = append(figs[k], f)
			}
		}
	}
	d.stop()
	d.aird = bins[0]
	d.cleanup()
	for k, fs := range figs {
		med := func(f func(restartFigures) float64) float64 {
			v := make([]float64, len(fs))
			for i := range fs {
				v[i] = f(fs[i])
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		d.b.ReportMetric(med(func(f restartFigures) float64 { return f.ready.Seconds() }), fmt.Sprintf("restart-%d-s", k))
		d.b.ReportMetric(med(func(f restartFigures) float64 { return f.cpu }), fmt.Sprintf("restart-%d-cpu-s", k))
		d.b.ReportMetric(med(func(f restartFigures) float64 { return float64(f.faults) }), fmt.Sprintf("restart-%d-faults", k))
		d.b.ReportMetric(med(func(f restartFigures) float64 { return f.peak / (1 << 20) }), fmt.Sprintf("restart-%d-peak-MB", k))
	}
}

// restartFigures are one restart's, read at READY.
type restartFigures struct {
	ready     time.Duration
	cpu, peak float64
	faults    int
}

func (d *benchDaemon) measuredRestart() restartFigures {
	ready := d.start()
	return restartFigures{ready: ready, cpu: d.cpu(), faults: d.minorFaults(), peak: d.rssPeak()}
}

// minorFaults returns the page faults aird took that needed no I/O
// (minflt, the 10th field of /proc/PID/stat).
func (d *benchDaemon) minorFaults() int {
	d.b.Helper()
	n, err := strconv.Atoi(d.statFields()[7])
	if err != nil {
		d.b.Fatalf("parse /proc/%d/stat: %v", d.cmd.Process.Pid, err)
	}
	return n
}
