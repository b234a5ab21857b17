package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
	"golang.org/x/sys/unix"
)

// The learned-routes benchmark of docs/performance-bgp.md (bench/bgp/run.sh
// learn): a node importing other nodes' pod prefixes (fd00:200::/40 ge 64
// le 64) from one ToR. One BIRD sender in the switch namespace holds N
// static /64s; in the node namespace the receiver is, alternately, BIRD
// (its kernel protocol exporting to the FIB table) or the speaker (the
// same import filter), each peering with the sender, in the same run.
//
// For each receiver it measures, from the moment the receiver's session
// is Established (polled every 20 ms: birdc, or Neighbors):
//   - fib: until the FIB table holds all N routes;
//   - withdraw: from `birdc disable` of the sender's static protocol until
//     the table holds none;
//   - the receiver's RSS (VmRSS, no forced GC) when the FIB is full, 20 s
//     later (AIRD_BENCH_SETTLE) and after the withdrawal.
//
// The FIB is watched with an rtnetlink subscription to IPv6 route events
// (one message per route, counted by prefix in the table), not by dumps:
// a dump of 100,000 routes every poll would take a core from the receiver.
// The subscriber runs in a process of its own (bench_fibwatch_test.go),
// the same for both receivers: in the test process it would be in the
// speaker's.

const benchLearnBase = 0xfd000200 // the top of fd00:200::/40

type learnResult struct {
	Kind        string  `json:"kind"`
	N           int     `json:"n"`
	Run         int     `json:"run"`
	FIBMS       float64 `json:"fib_ms"`      // Established -> N in the FIB
	WithdrawMS  float64 `json:"withdraw_ms"` // sender withdraws -> 0 in the FIB
	RSSMB       float64 `json:"rss_mb"`      // when the FIB was full
	SettledMB   float64 `json:"settled_mb"`  // AIRD_BENCH_SETTLE later
	WithdrawnMB float64 `json:"withdrawn_mb"`
	// The receiver's CPU time (user and system, which includes the
	// kernel's work on its route messages) over the two phases.
	FIBCPUMS      float64 `json:"fib_cpu_ms"`
	WithdrawCPUMS float64 `json:"withdraw_cpu_ms"`
	// aird only: the garbage collector's cycles over each phase and its
	// CPU time as the Go runtime estimates it (/cpu/classes/gc/total,
	// an estimate comparable with the runtime's other CPU classes, not
	// with the process's CPU time above).
	FIBGCs       uint64  `json:"fib_gcs"`
	WithdrawGCs  uint64  `json:"withdraw_gcs"`
	FIBGCMS      float64 `json:"fib_gc_ms"`
	WithdrawGCMS float64 `json:"withdraw_gc_ms"`
}

// learnReceiver is what learnMeasure needs of a receiver.
type learnReceiver struct {
	up  func() bool          // its session is Established
	rss func() float64       // its VmRSS, MB
	cpu func() time.Duration // its CPU time so far
	// gc, if not nil, reads its garbage collector's cycles and CPU time
	// so far (learnGC).
	gc func() (cycles uint64, cpu time.Duration)
	// settled, if not nil, runs after the reading 20 s later.
	settled func()
	// profile, if not nil, profiles the receiver over a phase ("fib",
	// "withdraw") until the returned function is called.
	profile func(phase string) (stop func())
	// rib, if not nil, counts the receiver's paths: those GoBGP holds
	// from the peer (Adj-RIB-In) and those the speaker counts accepted
	// (for the timeline).
	// timeline).
	rib func() (received, accepted int)
}

func TestBenchLearn(t *testing.T) {
	if os.Getenv(benchEnv) == "" && os.Getenv(innerEnv) == "" {
		t.Skip("benchmark: set AIRD_BENCH=1 (bench/bgp/run.sh learn)")
	}
	sizes, runs := benchSizes(t)
	var results []learnResult
	for _, n := range sizes {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			results = append(results, benchLearn(t, n, runs)...)
		})
	}
	if os.Getenv(innerEnv) != "" || t.Failed() {
		return
	}
	learnReport(results, sizes)
}

// learnPrefix is the i-th /64 of the sender (i < 2^24), in
// fd00:200::/40: fd00:200:hh:llll::/64.
func learnPrefix(i int) netip.Prefix {
	var b [16]byte
	v := uint64(benchLearnBase)<<32 | uint64(i)
	for k := range 8 {
		b[k] = byte(v >> (56 - 8*k))
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

func learnSenderConf(peer string, n int) string {
	var b strings.Builder
	b.Grow(n * 48)
	b.WriteString("router id 10.255.0.2;\nlog stderr { warning, error, fatal };\nprotocol device { scan time 10; }\n")
	b.WriteString("protocol static static6 { ipv6;\n")
	for i := range n {
		fmt.Fprintf(&b, "  route %s blackhole;\n", learnPrefix(i))
	}
	fmt.Fprintf(&b, `}
protocol bgp node1 {
  passive on;
  local as 65101; neighbor %s as 65001;
  ipv6 { import none; export where source = RTS_STATIC; };
  ipv4 { import none; export none; };
}
`, peer)
	return b.String()
}

// learnBIRDConf is the receiving BIRD in the node namespace: the speaker's
// import filter, its kernel protocol writing to the same table.
func learnBIRDConf(peer string, table int) string {
	return fmt.Sprintf(`router id 10.255.0.1;
log stderr { warning, error, fatal };
protocol device { scan time 10; }
protocol kernel kfib { kernel table %d; ipv6 { import none; export all; }; merge paths on; }
protocol bgp tor1 {
  local as 65001; neighbor %s as 65101;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv6 { import where net ~ [ fd00:200::/40{64,64} ]; export none; };
  ipv4 { import none; export none; };
}
`, table, peer)
}

func benchLearn(t *testing.T, n, runs int) []learnResult {
	out := ""
	if os.Getenv(innerEnv) == "" {
		out = filepath.Join(testutil.TempDir(t, "aird-bench-"), "result.json")
		t.Setenv(benchOutEnv, out)
	}
	var results []learnResult
	labTest(t, func(t *testing.T, l *lab) {
		tor := l.link(t, "tor1")
		l.startBIRD(t, tor, func(tor torSpec) string { return learnSenderConf(tor.NodeAddr, n) })
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		benchWait(t, "sender holds its statics", func() (bool, string) {
			c := benchBIRDCount(tor.bird(), "static6", "master6")
			return c == n, fmt.Sprintf("%d routes", c)
		})
		for r := 1; r <= runs; r++ {
			results = append(results, learnBIRDRun(t, l, n, r), learnAirdRun(t, l, n, r))
		}
		b, err := json.Marshal(results)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(os.Getenv(benchOutEnv), b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if out == "" || t.Failed() {
		return results
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("inner run left no result: %v", err)
	}
	if err := json.Unmarshal(b, &results); err != nil {
		t.Fatal(err)
	}
	return results
}

func learnBIRDRun(t *testing.T, l labSpec, n, run int) learnResult {
	w := newFIBWatch(t, l.Table, n)
	defer w.close()
	b := testutil.StartBIRD(t, l.Node, learnBIRDConf(l.Tors[0].Addr, l.Table))
	defer b.Proc.Kill()
	res := learnMeasure(t, l, n, w, learnReceiver{
		up: func() bool {
			up, _ := benchBIRDPoll2(b, "tor1")
			return up
		},
		rss: func() float64 { return procRSSMB(t, b.Proc.PID()) },
		cpu: func() time.Duration { return procCPU(t, b.Proc.PID()) },
	})
	res.Kind, res.Run = "bird", run
	t.Logf("BIRD receiver N=%d run %d: FIB full %.0f ms after Established (CPU %.0f ms), withdrawn in %.0f ms (CPU %.0f ms); RSS %.1f MB, %.1f MB later, %.1f MB withdrawn",
		n, run, res.FIBMS, res.FIBCPUMS, res.WithdrawMS, res.WithdrawCPUMS, res.RSSMB, res.SettledMB, res.WithdrawnMB)
	b.Proc.Kill()
	return res
}

func learnAirdRun(t *testing.T, l labSpec, n, run int) learnResult {
	w := newFIBWatch(t, l.Table, n)
	defer w.close()
	tor := l.Tors[0]
	sp := newSpeaker(t, l, tor1TOML(l, tor.Addr, fmt.Sprintf(`families = ["ipv6"]
[bgp.peers.import]
prefixes = ["fd00:200::/40 ge 64 le 64"]
max-prefixes = %d
`, n+1)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res := learnMeasure(t, l, n, w, learnReceiver{
		up:      func() bool { return neighbor(sp, tor.Addr).State == "established" },
		rss:     func() float64 { return learnMemory(t) },
		cpu:     func() time.Duration { return selfCPU(t) },
		gc:      learnGC,
		settled: func() { benchHeapProfile(t, n, run) },
		profile: func(phase string) func() {
			name := fmt.Sprintf("aird-n%d-run%d-%s", n, run, phase)
			benchHeapProfileNamed(t, name+"-start")
			stop := benchCPUProfileNamed(t, name)
			stopTrace := benchTraceNamed(t, name)
			return func() {
				stopTrace()
				stop()
				benchHeapProfileNamed(t, name+"-end")
			}
		},
		rib: func() (int, int) {
			n := neighbor(sp, tor.Addr)
			return n.Received, n.Accepted
		},
	})
	res.Kind, res.Run = "aird", run
	t.Logf("aird receiver N=%d run %d: FIB full %.0f ms after Established (CPU %.0f ms), withdrawn in %.0f ms (CPU %.0f ms); RSS %.1f MB, %.1f MB later, %.1f MB withdrawn",
		n, run, res.FIBMS, res.FIBCPUMS, res.WithdrawMS, res.WithdrawCPUMS, res.RSSMB, res.SettledMB, res.WithdrawnMB)
	if err := sp.Stop(StopShutdown); err != nil {
		t.Fatal(err)
	}
	return res
}

// learnMeasure times one receiver (already started): Established, all N
// in the FIB, the memory, then the sender's withdrawal until the FIB is
// empty; it re-enables the sender's routes for the next run.
func learnMeasure(t *testing.T, l labSpec, n int, w *fibWatch, rcv learnReceiver) learnResult {
	send := l.Tors[0].bird()
	var res learnResult
	res.N = n
	var est time.Time
	var cpu time.Duration
	profile := func(phase string) func() {
		if rcv.profile == nil {
			return func() {}
		}
		return rcv.profile(phase)
	}
	gc := rcv.gc
	if gc == nil {
		gc = func() (uint64, time.Duration) { return 0, 0 }
	}
	var gcs uint64
	var gcCPU time.Duration
	stopProfile := profile("fib")
	benchWait(t, "receiver established", func() (bool, string) {
		if rcv.up() {
			est, cpu = time.Now(), rcv.cpu()
			gcs, gcCPU = gc()
			return true, ""
		}
		return false, "not yet"
	})
	diag := func() string {
		out, _ := send.Cmd("show", "route", "count")
		r, _ := exec.Command("ip", "-6", "route", "show", "table", strconv.Itoa(l.Table)).CombinedOutput()
		return "sender: " + out + "\n" + string(r[:min(len(r), 2000)])
	}
	stopTimeline := learnTimeline(t, w, est, rcv.rib)
	full := w.waitCount(t, n, diag)
	res.FIBCPUMS = ms(rcv.cpu() - cpu)
	n2, c2 := gc()
	res.FIBGCs, res.FIBGCMS = n2-gcs, ms(c2-gcCPU)
	stopProfile()
	stopTimeline()
	res.FIBMS = ms(full.Sub(est))
	res.RSSMB = rcv.rss()
	if settle := benchSettle(t); settle > 0 {
		time.Sleep(settle)
		res.SettledMB = rcv.rss()
	}
	if rcv.settled != nil {
		rcv.settled()
	}
	stopProfile = profile("withdraw")
	start, cpu := time.Now(), rcv.cpu()
	gcs, gcCPU = gc()
	stopTimeline = learnTimeline(t, w, start, rcv.rib)
	send.MustCmd(t, "disable", "static6")
	gone := w.waitCount(t, 0, diag)
	res.WithdrawCPUMS = ms(rcv.cpu() - cpu)
	n2, c2 = gc()
	res.WithdrawGCs, res.WithdrawGCMS = n2-gcs, ms(c2-gcCPU)
	stopProfile()
	stopTimeline()
	res.WithdrawMS = ms(gone.Sub(start))
	res.WithdrawnMB = rcv.rss()
	send.MustCmd(t, "enable", "static6")
	benchWait(t, "sender holds its statics again", func() (bool, string) {
		c := benchBIRDCount(send, "static6", "master6")
		return c == n, fmt.Sprintf("%d routes", c)
	})
	return res
}

// learnTimeline logs the FIB's prefix count, and the receiver's RIB count
// if rib is set, every 500 ms until stopped (AIRD_BENCH_TIMELINE=1; a
// duration such as 100ms sets the period).
func learnTimeline(t *testing.T, w *fibWatch, start time.Time, rib func() (int, int)) (stop func()) {
	env := os.Getenv("AIRD_BENCH_TIMELINE")
	if env == "" {
		return func() {}
	}
	period := 500 * time.Millisecond
	if d, err := time.ParseDuration(env); err == nil && d > 0 {
		period = d
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-done:
				return
			case <-time.After(period):
			}
			c := w.last()
			if rib != nil {
				recv, acc := rib()
				t.Logf("timeline %6.0f ms: %d in the FIB, %d accepted, %d in the Adj-RIB-In", ms(time.Since(start)), c, acc, recv)
				continue
			}
			t.Logf("timeline %6.0f ms: %d in the FIB", ms(time.Since(start)), c)
		}
	}()
	return func() { close(done); <-exited }
}

// benchBIRDPoll2 is benchBIRDPoll for a protocol of another name.
func benchBIRDPoll2(b *testutil.BIRD, proto string) (bool, int) {
	out, _ := b.Cmd("show", "protocols", proto)
	for _, m := range birdProtoRE.FindAllStringSubmatch(out, -1) {
		if m[1] == proto {
			return m[4] == "Established", 0
		}
	}
	return false, 0
}

// learnMemory reads this process's VmRSS in MB and logs how the Go heap
// stands (no forced GC: the reading is what the process holds).
// learnGC reads this process's garbage-collection cycles and the Go
// runtime's estimate of the CPU time they took (their background workers,
// assists and pauses).
func learnGC() (uint64, time.Duration) {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	var cycles uint64
	var cpu time.Duration
	if s[0].Value.Kind() == metrics.KindUint64 {
		cycles = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindFloat64 {
		cpu = time.Duration(s[1].Value.Float64() * float64(time.Second))
	}
	return cycles, cpu
}

func learnMemory(t *testing.T) float64 {
	rss := procStatusMB(t, "VmRSS")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	const mb = 1 << 20
	t.Logf("memory: RSS %.1f MB; heap allocated %.1f MB (live after the last GC %.1f MB), in use %.1f MB, idle not released %.1f MB, released %.1f MB; other runtime %.1f MB; GCs %d",
		rss, float64(ms.HeapAlloc)/mb, float64(liveHeap())/mb, float64(ms.HeapInuse)/mb,
		float64(ms.HeapIdle-ms.HeapReleased)/mb, float64(ms.HeapReleased)/mb, float64(ms.Sys-ms.HeapSys)/mb, ms.NumGC)
	return rss
}

// liveHeap is the heap the last GC found live, in bytes.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// procCPU reads the CPU time (user and system) of a process.
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses:
	// utime and stime are the 14th and 15th of the line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// selfCPU reads this process's CPU time (user and system).
func selfCPU(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procRSSMB reads VmRSS of a process, in MB.
func procRSSMB(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func learnReport(results []learnResult, sizes []int) {
	fmt.Println("BENCH learned routes: one BIRD sender, receiver BIRD (kernel protocol) or aird, alternating")
	fmt.Println("BENCH runs: kind N run fib_ms withdraw_ms rss_mb settled_mb withdrawn_mb fib_cpu_ms withdraw_cpu_ms [aird: fib_gcs fib_gc_ms withdraw_gcs withdraw_gc_ms]")
	for _, r := range results {
		fmt.Printf("BENCH run  %s %d %d %.0f %.0f %.1f %.1f %.1f %.0f %.0f", r.Kind, r.N, r.Run, r.FIBMS, r.WithdrawMS, r.RSSMB, r.SettledMB, r.WithdrawnMB,
			r.FIBCPUMS, r.WithdrawCPUMS)
		if r.Kind == "aird" {
			fmt.Printf(" %d %.0f %d %.0f", r.FIBGCs, r.FIBGCMS, r.WithdrawGCs, r.WithdrawGCMS)
		}
		fmt.Println()
	}
	fmt.Println("BENCH")
	fmt.Printf("BENCH %-7s %12s %12s %7s %12s %12s %7s %9s %9s %12s %12s\n",
		"N", "BIRD fib ms", "aird fib ms", "ratio", "BIRD wd ms", "aird wd ms", "ratio", "BIRD MB", "aird MB", "aird MB +20s", "aird MB wd")
	for _, n := range sizes {
		bird, aird := learnByKind(results, n)
		f := func(rs []learnResult, v func(learnResult) float64) float64 {
			var xs []float64
			for _, r := range rs {
				xs = append(xs, v(r))
			}
			return median(xs)
		}
		fib := func(r learnResult) float64 { return r.FIBMS }
		wd := func(r learnResult) float64 { return r.WithdrawMS }
		fmt.Printf("BENCH %-7d %12.0f %12.0f %7.2f %12.0f %12.0f %7.2f %9.1f %9.1f %12.1f %12.1f\n", n,
			f(bird, fib), f(aird, fib), f(aird, fib)/f(bird, fib), f(bird, wd), f(aird, wd), f(aird, wd)/f(bird, wd),
			f(bird, func(r learnResult) float64 { return r.RSSMB }), f(aird, func(r learnResult) float64 { return r.RSSMB }),
			f(aird, func(r learnResult) float64 { return r.SettledMB }), f(aird, func(r learnResult) float64 { return r.WithdrawnMB }))
		fibCPU := func(r learnResult) float64 { return r.FIBCPUMS }
		wdCPU := func(r learnResult) float64 { return r.WithdrawCPUMS }
		fmt.Printf("BENCH %-7d CPU ms, fib: BIRD %.0f aird %.0f (%.2f); withdraw: BIRD %.0f aird %.0f (%.2f)\n", n,
			f(bird, fibCPU), f(aird, fibCPU), f(aird, fibCPU)/f(bird, fibCPU), f(bird, wdCPU), f(aird, wdCPU), f(aird, wdCPU)/f(bird, wdCPU))
		fmt.Printf("BENCH %-7d aird's garbage collector (runtime estimate), fib: %.0f cycles, %.0f ms; withdraw: %.0f cycles, %.0f ms\n", n,
			f(aird, func(r learnResult) float64 { return float64(r.FIBGCs) }), f(aird, func(r learnResult) float64 { return r.FIBGCMS }),
			f(aird, func(r learnResult) float64 { return float64(r.WithdrawGCs) }), f(aird, func(r learnResult) float64 { return r.WithdrawGCMS }))
		var rf, rw []string
		for i := range min(len(bird), len(aird)) {
			rf = append(rf, fmt.Sprintf("%.2f", aird[i].FIBMS/bird[i].FIBMS))
			rw = append(rw, fmt.Sprintf("%.2f", aird[i].WithdrawMS/bird[i].WithdrawMS))
		}
		fmt.Printf("BENCH %-7d ratios per run (aird / BIRD of the same round), fib: %s; withdraw: %s\n", n, strings.Join(rf, " "), strings.Join(rw, " "))
	}
	fmt.Println("BENCH (medians over runs; fib = receiver's session Established until the FIB table holds N; wd = sender's withdrawal until it holds none;")
	fmt.Println("BENCH  MB = VmRSS without a forced GC; CPU = the receiver's user and system time over the phase, the kernel's route work included)")
}

// learnByKind splits the results of size n by receiver, in run order.
func learnByKind(results []learnResult, n int) (bird, aird []learnResult) {
	for _, r := range results {
		switch {
		case r.N != n:
		case r.Kind == "bird":
			bird = append(bird, r)
		default:
			aird = append(aird, r)
		}
	}
	return bird, aird
}
