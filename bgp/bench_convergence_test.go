package bgp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// The convergence benchmark of docs/performance-bgp.md (run it with
// bench/bgp/run.sh). It is skipped unless AIRD_BENCH is set.
//
// For each N and run it measures, in fresh namespaces:
//   - bird: a BIRD sender with N static /128s (loaded before the clock
//     starts) and a BIRD receiver;
//   - aird: the speaker (New, SetAdvertised with the same N /128s before
//     the clock starts, then Start) in the node namespace with the same
//     BIRD receiver.
//
// The clock stops when the receiver's ipv6 channel has imported N routes
// (`show protocols all node1`, polled every 20 ms). Who opens the session
// is AIRD_BENCH_CONNECT (see benchReceiverConnects), the same for both:
//   - receiver (default): both senders are passive; the receiver's
//     protocol is disabled until the clock starts with `birdc enable
//     node1` on it (in the aird run, just before Start), and it connects
//     after BIRD's minimum connect delay, 0.75-1 s;
//   - sender: the receiver is passive; the clock starts at `birdc enable
//     node1` on the BIRD sender, or at Start, and each sender connects
//     after its own first-connect delay (BIRD 0.75-1 s, GoBGP 1.5-2 s).
//
// Both also record when the receiver first shows the session Established
// (same poll), to split session set-up from route transfer. After an aird
// run the inner process runs runtime.GC() and reads VmRSS, VmHWM and the
// live heap, then again AIRD_BENCH_SETTLE (default 20s) later.
//
// AIRD_BENCH_N (comma-separated, default 10000,100000) and
// AIRD_BENCH_RUNS (default 3) choose the sizes; AIRD_BENCH_TRACE=DIR an
// execution trace per aird run; AIRD_BENCH_CPUPROFILE=DIR
// writes a CPU profile of each aird run (Start to N in BIRD) to DIR, and
// AIRD_BENCH_HEAPPROFILE=DIR a heap profile taken after the last memory
// reading; AIRD_BENCH_TIMELINE=1 logs the receiver's route count as it
// changes; AIRD_BENCH_WAKE_SENDER=1 keeps the BIRD sender's event loop
// awake (see benchWakeSender).

const (
	benchEnv     = "AIRD_BENCH"
	benchOutEnv  = "AIRD_BENCH_OUT" // results file, in the inner run
	benchPoll    = 20 * time.Millisecond
	benchTimeout = 150 * time.Second
	benchBase    = "fd00:400::1"
)

type benchResult struct {
	Kind          string  `json:"kind"` // "bird" or "aird"
	N             int     `json:"n"`
	Run           int     `json:"run"`
	EstablishedMS float64 `json:"established_ms"`
	TotalMS       float64 `json:"total_ms"`
	RSSMB         float64 `json:"rss_mb,omitempty"`
	HWMMB         float64 `json:"hwm_mb,omitempty"`
	HeapMB        float64 `json:"heap_mb,omitempty"` // live heap after the GC
	// The same, AIRD_BENCH_SETTLE later.
	SettledRSSMB  float64 `json:"settled_rss_mb,omitempty"`
	SettledHeapMB float64 `json:"settled_heap_mb,omitempty"`
}

func (r benchResult) transferMS() float64 { return r.TotalMS - r.EstablishedMS }

func benchSizes(t *testing.T) (ns []int, runs int) {
	s := os.Getenv("AIRD_BENCH_N")
	if s == "" {
		s = "10000,100000"
	}
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("AIRD_BENCH_N: bad size %q", f)
		}
		ns = append(ns, n)
	}
	runs = 3
	if s := os.Getenv("AIRD_BENCH_RUNS"); s != "" {
		var err error
		if runs, err = strconv.Atoi(s); err != nil || runs < 1 {
			t.Fatalf("AIRD_BENCH_RUNS: bad count %q", s)
		}
	}
	return ns, runs
}

func TestBenchConvergence(t *testing.T) {
	inner := os.Getenv(innerEnv) != ""
	if os.Getenv(benchEnv) == "" && !inner {
		t.Skip("benchmark: set AIRD_BENCH=1 (bench/bgp/run.sh)")
	}
	sizes, runs := benchSizes(t)
	var results []benchResult
	for _, n := range sizes {
		for r := 1; r <= runs; r++ {
			// Flat names: -test.run matches each level unanchored, so
			// "n1000/aird1" would also select "n10000/aird1".
			t.Run(fmt.Sprintf("n%d_bird%d", n, r), func(t *testing.T) {
				if inner {
					t.Skip("outer run only")
				}
				results = append(results, benchBIRD(t, n, r))
			})
			t.Run(fmt.Sprintf("n%d_aird%d", n, r), func(t *testing.T) {
				if inner && os.Getenv(innerEnv) != t.Name() {
					t.Skip("not this inner run")
				}
				if res, ok := benchAird(t, n, r); ok {
					results = append(results, res)
				}
			})
		}
	}
	if inner || t.Failed() {
		return
	}
	who := "sender (receiver passive)"
	if benchReceiverConnects(t) {
		who = "receiver (senders passive)"
	}
	benchReport(results, sizes, who)
}

// benchReceiverConnects reports the method where the receiver opens the
// session (AIRD_BENCH_CONNECT=receiver, the default): both senders are
// passive and the receiver's BGP protocol, disabled until the clock starts,
// connects after BIRD's minimum connect delay (0.75-1 s). With
// AIRD_BENCH_CONNECT=sender the receiver is passive and the sender connects
// after its own first-connect delay: BIRD's 0.75-1 s, or GoBGP's fixed
// 1.5-2 s (pkg/server/fsm.go connectLoop, minConnectRetryInterval).
func benchReceiverConnects(t *testing.T) bool {
	switch m := os.Getenv("AIRD_BENCH_CONNECT"); m {
	case "", "receiver":
		return true
	case "sender":
		return false
	default:
		t.Fatalf("AIRD_BENCH_CONNECT: %q is neither receiver nor sender", m)
		return false
	}
}

// benchReceiverConf is the receiving BIRD, the same for both runs: an eBGP
// session (AS 65101) with the sender, importing everything, exporting
// nothing, no kernel protocol. It is passive, or, when it connects, starts
// disabled with the shortest connect delay BIRD allows.
func benchReceiverConf(peer string, connects bool) string {
	session := "passive on;"
	if connects {
		session = "disabled;\n  connect delay time 1; connect retry time 1; error wait time 1, 2;"
	}
	return fmt.Sprintf(`router id 10.255.0.1;
log stderr { warning, error, fatal };
protocol device { scan time 10; }
protocol bgp node1 {
  local as 65101; neighbor %s as 65001;
  %s
  ipv6 { import all; export none; };
  ipv4 { import all; export none; extended next hop on; };
}
`, peer, session)
}

// benchSenderConf is the sending BIRD: the same N /128s as the speaker
// gets, exported over a BGP protocol that starts disabled, or that is
// passive when the receiver connects.
func benchSenderConf(peer string, n int, receiverConnects bool) string {
	var b strings.Builder
	b.Grow(n * 48)
	b.WriteString("router id 10.255.0.2;\nlog stderr { warning, error, fatal };\nprotocol device { scan time 10; }\n")
	b.WriteString("protocol static static6 { ipv6;\n")
	a := netip.MustParseAddr(benchBase)
	for range n {
		fmt.Fprintf(&b, "  route %s/128 blackhole;\n", a)
		a = a.Next()
	}
	b.WriteString("}\n")
	session := "disabled;\n  connect delay time 0; connect retry time 1; error wait time 1, 2;"
	if receiverConnects {
		session = "passive on;"
	}
	fmt.Fprintf(&b, `protocol bgp node1 {
  %s
  local as 65001; neighbor %s as 65101;
  ipv6 { import none; export where source = RTS_STATIC; };
  ipv4 { import none; export none; extended next hop on; };
}
`, session, peer)
	return b.String()
}

// benchBIRDCount is birdCount without a *testing.T of the right kind.
func benchBIRDCount(b *testutil.BIRD, proto, table string) int {
	out, err := b.Cmd("show", "route", "protocol", proto, "count")
	if err != nil {
		return -1
	}
	for _, m := range birdCountRE.FindAllStringSubmatch(out, -1) {
		if m[2] == table {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return 0
}

// benchImportedRE is the route counter of BIRD's ipv6 channel in
// `show protocols all`: a counter, where `show route ... count` walks the
// table (100,000 routes every poll, on the receiver that is busy importing).
var benchImportedRE = regexp.MustCompile(`(?s)Channel ipv6\n.*?Routes:\s+(\d+) imported`)

// benchBIRDPoll reads, in one command, whether the receiver's session is
// Established and how many routes it has imported from it.
func benchBIRDPoll(b *testutil.BIRD) (established bool, routes int) {
	out, _ := b.Cmd("show", "protocols", "all", "node1")
	for _, m := range birdProtoRE.FindAllStringSubmatch(out, -1) {
		if m[1] == "node1" {
			established = m[4] == "Established"
		}
	}
	if m := benchImportedRE.FindStringSubmatch(out); m != nil {
		routes, _ = strconv.Atoi(m[1])
	}
	return established, routes
}

// benchWaitReceiver polls the receiver until it holds n routes; it returns
// when the session was first seen Established and when all were there.
func benchWaitReceiver(t *testing.T, b *testutil.BIRD, n int, start time.Time) (est, total time.Duration) {
	timeline := os.Getenv("AIRD_BENCH_TIMELINE") != ""
	last := -1
	benchWait(t, "receiver holds all the routes", func() (bool, string) {
		up, c := benchBIRDPoll(b)
		if est == 0 && up {
			est = time.Since(start)
		}
		if timeline && c != last {
			t.Logf("timeline %6.0f ms: established %v, %d routes", ms(time.Since(start)), up, c)
			last = c
		}
		return c == n, fmt.Sprintf("%d routes", c)
	})
	total = time.Since(start)
	if est == 0 {
		est = total
	}
	return est, total
}

// benchWakeSender sends the BIRD sender a CLI command every benchPoll
// until stopped (AIRD_BENCH_WAKE_SENDER=1). Without it, an idle BIRD
// sender often sends its last few hundred routes only 0.2-3 s after the
// rest (seen at 100,000: 99,840 routes in about 0.1 s, then a pause);
// waking its event loop removes the pause.
func benchWakeSender(b *testutil.BIRD) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-done:
				return
			case <-time.After(benchPoll):
				_, _ = b.Cmd("show", "status")
			}
		}
	}()
	return func() { close(done); <-exited }
}

// benchBIRD is one BIRD-to-BIRD run.
func benchBIRD(t *testing.T, n, run int) benchResult {
	testutil.RequirePrivileged(t)
	nsR, nsS := testutil.NewNetns(t, "bgbr-"), testutil.NewNetns(t, "bgbs-")
	devR, devS := testutil.UniqueName("vr"), testutil.UniqueName("vs")
	testutil.Veth(t, devR, nsR, devS, nsS)
	const addrR, addrS = "fd00:100:1::1", "fd00:100:1::2"
	testutil.Addr(t, nsR, devR, addrR+"/64")
	testutil.Addr(t, nsS, devS, addrS+"/64")
	connects := benchReceiverConnects(t)
	recv := testutil.StartBIRD(t, nsR, benchReceiverConf(addrS, connects))
	send := testutil.StartBIRD(t, nsS, benchSenderConf(addrR, n, connects))
	// The sender has loaded its statics before the clock starts.
	benchWait(t, "sender holds its statics", func() (bool, string) {
		c := benchBIRDCount(send, "static6", "master6")
		return c == n, fmt.Sprintf("%d routes", c)
	})

	start := time.Now()
	if connects {
		recv.MustCmd(t, "enable", "node1")
	} else {
		send.MustCmd(t, "enable", "node1")
	}
	if os.Getenv("AIRD_BENCH_WAKE_SENDER") != "" {
		stop := benchWakeSender(send)
		defer stop()
	}
	est, total := benchWaitReceiver(t, recv, n, start)
	res := benchResult{Kind: "bird", N: n, Run: run, EstablishedMS: ms(est), TotalMS: ms(total)}
	t.Logf("bird→bird N=%d run %d: established %.0f ms, all in receiver %.0f ms", n, run, res.EstablishedMS, res.TotalMS)
	return res
}

// benchAird is one speaker-to-BIRD run; in the outer run it returns what
// the inner run measured.
func benchAird(t *testing.T, n, run int) (benchResult, bool) {
	var res benchResult
	out := ""
	if os.Getenv(innerEnv) == "" {
		out = filepath.Join(testutil.TempDir(t, "aird-bench-"), "result.json")
		t.Setenv(benchOutEnv, out)
	}
	labTest(t, func(t *testing.T, l *lab) {
		for i := range benchPeers(t) {
			tor := l.link(t, fmt.Sprintf("tor%d", i+1))
			l.startBIRD(t, tor, func(tor torSpec) string {
				conf := benchReceiverConf(tor.NodeAddr, benchReceiverConnects(t))
				if i > 0 {
					// The next hop is the underlay, the node's address on
					// tor1's link: reach it through the node.
					conf = strings.Replace(conf, "ipv6 { import all; export none; };",
						"ipv6 { import all; export none; gateway recursive; igp table master6; };", 1)
					conf += fmt.Sprintf("protocol static underlay { ipv6; route %s/128 via %s; }\n", l.spec.Tors[0].NodeAddr, tor.NodeAddr)
				}
				return conf
			})
		}
	}, func(t *testing.T, l labSpec) {
		res = benchAirdInner(t, l, n, run)
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(os.Getenv(benchOutEnv), b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if out == "" || t.Failed() {
		return res, false
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("inner run left no result: %v", err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("aird→bird N=%d run %d: established %.0f ms, all in receiver %.0f ms, RSS %.1f MB (peak %.1f MB, live heap %.1f MB)",
		n, run, res.EstablishedMS, res.TotalMS, res.RSSMB, res.HWMMB, res.HeapMB)
	return res, true
}

// benchPeers is AIRD_BENCH_PEERS (default 1): how many receivers the
// speaker sends its routes to. The BIRD baseline has one receiver
// whatever it says: with more, compare the memory, not the time.
func benchPeers(t *testing.T) int {
	s := os.Getenv("AIRD_BENCH_PEERS")
	if s == "" {
		return 1
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 8 {
		t.Fatalf("AIRD_BENCH_PEERS: %q is not 1-8", s)
	}
	return p
}

func benchAirdInner(t *testing.T, l labSpec, n, run int) benchResult {
	tor := l.Tors[0]
	connects := benchReceiverConnects(t)
	conf := nodeTOML(l) + "[bgp]\nasn = 65001\nconnect-retry = \"1s\"\n"
	for _, r := range l.Tors {
		conf += fmt.Sprintf("[[bgp.peers]]\nname = %q\naddress = %q\nasn = 65101\npassive = %t\n", r.Name, r.Addr, connects)
	}
	sp := newSpeaker(t, l, conf)
	routes := prefixes(benchBase, n)
	setStart := time.Now()
	if err := sp.SetAdvertised(routes); err != nil {
		t.Fatal(err)
	}
	t.Logf("SetAdvertised(%d) before Start: %s", n, time.Since(setStart).Round(time.Millisecond))

	stopProfile := benchCPUProfile(t, n, run)
	stopTrace := benchTrace(t, n, run)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := tor.bird()
	start := time.Now()
	if connects {
		for _, r := range l.Tors {
			r.bird().MustCmd(t, "enable", "node1")
		}
	}
	// Start loads the routes after adding the peer: poll meanwhile.
	startDone := make(chan time.Duration, 1)
	var startErr error
	go func() {
		startErr = sp.Start(ctx)
		startDone <- time.Since(start)
	}()
	t.Cleanup(func() { _ = sp.Stop(StopShutdown) })
	est, total := benchWaitReceiver(t, b, n, start)
	for _, r := range l.Tors[1:] {
		benchWait(t, r.Name+" holds all the routes", func() (bool, string) {
			_, c := benchBIRDPoll(r.bird())
			return c == n, fmt.Sprintf("%d routes", c)
		})
		total = time.Since(start)
	}
	stopProfile()
	stopTrace()
	startCall := <-startDone
	if startErr != nil {
		t.Fatal(startErr)
	}
	res := benchResult{Kind: "aird", N: n, Run: run, EstablishedMS: ms(est), TotalMS: ms(total)}
	res.RSSMB, res.HWMMB, res.HeapMB = benchMemory(t)
	t.Logf("Start returned after %s; established %s; all %d in BIRD %s; RSS %.1f MB, peak %.1f MB, live heap %.1f MB",
		startCall.Round(time.Millisecond), est.Round(time.Millisecond), n, total.Round(time.Millisecond), res.RSSMB, res.HWMMB, res.HeapMB)
	benchNeighbors(t, sp)
	if settle := benchSettle(t); settle > 0 {
		time.Sleep(settle)
		res.SettledRSSMB, _, res.SettledHeapMB = benchMemory(t)
		t.Logf("%s later: RSS %.1f MB, live heap %.1f MB", settle, res.SettledRSSMB, res.SettledHeapMB)
	}
	benchHeapProfile(t, n, run)
	return res
}

// benchNeighbors logs what Neighbors calls (airctl, the metrics) cost with
// the routes advertised: the first counts the advertised routes in GoBGP,
// the second finds nothing changed.
func benchNeighbors(t *testing.T, sp *Speaker) {
	for _, call := range []string{"first", "again"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		sp.Neighbors()
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		t.Logf("Neighbors (%s): %s, %.1f MB allocated", call, took.Round(time.Millisecond), float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	}
}

// benchMemory runs a GC and reads VmRSS, VmHWM and the live heap, in MB.
func benchMemory(t *testing.T) (rss, hwm, heap float64) {
	runtime.GC()
	rss, hwm = procStatusMB(t, "VmRSS"), procStatusMB(t, "VmHWM")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mb := func(v uint64) uint64 { return v >> 20 }
	t.Logf("memory: RSS %.1f MB (anonymous %.1f, file %.1f); Go: sys %d, heap alloc %d, in use %d, idle %d, released %d, stacks %d, GC meta %d, other %d MB",
		rss, procStatusMB(t, "RssAnon"), procStatusMB(t, "RssFile"),
		mb(ms.Sys), mb(ms.HeapAlloc), mb(ms.HeapInuse), mb(ms.HeapIdle), mb(ms.HeapReleased), mb(ms.StackSys), mb(ms.GCSys), mb(ms.OtherSys))
	return rss, hwm, float64(ms.HeapAlloc) / (1 << 20)
}

// benchSettle is AIRD_BENCH_SETTLE (default 20s): how long after the
// receiver holds N the memory is read again, the speaker idle meanwhile
// (its 5 s FIB resync runs, and it returns the memory of the bulk load to
// the OS once that has been quiet for trimQuiet). 0 skips it.
func benchSettle(t *testing.T) time.Duration {
	s := os.Getenv("AIRD_BENCH_SETTLE")
	if s == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		t.Fatalf("AIRD_BENCH_SETTLE: bad duration %q", s)
	}
	return d
}

// benchCPUProfile profiles the CPU into AIRD_BENCH_CPUPROFILE, if set,
// until the returned function is called.
func benchCPUProfile(t *testing.T, n, run int) (stop func()) {
	return benchCPUProfileNamed(t, fmt.Sprintf("aird-n%d-run%d", n, run))
}

// benchCPUProfileNamed is benchCPUProfile into AIRD_BENCH_CPUPROFILE/name.pprof.
func benchCPUProfileNamed(t *testing.T, name string) (stop func()) {
	dir := os.Getenv("AIRD_BENCH_CPUPROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// benchTrace records an execution trace (go tool trace) into
// AIRD_BENCH_TRACE, if set, until the returned function is called.
func benchTrace(t *testing.T, n, run int) (stop func()) {
	return benchTraceNamed(t, fmt.Sprintf("aird-n%d-run%d", n, run))
}

// benchTraceNamed is benchTrace into a file named name.
func benchTraceNamed(t *testing.T, name string) (stop func()) {
	dir := os.Getenv("AIRD_BENCH_TRACE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".trace"))
	if err != nil {
		t.Fatal(err)
	}
	if err := trace.Start(f); err != nil {
		t.Fatal(err)
	}
	return func() { trace.Stop(); f.Close() }
}

// benchHeapProfile writes a heap profile to AIRD_BENCH_HEAPPROFILE, if set.
func benchHeapProfile(t *testing.T, n, run int) {
	benchHeapProfileNamed(t, fmt.Sprintf("aird-n%d-run%d", n, run))
}

// benchHeapProfileNamed writes a heap profile named name into
// AIRD_BENCH_HEAPPROFILE, if set. Two of them bracket a phase: `go tool
// pprof -sample_index=alloc_space -diff_base START END` shows what the
// phase allocated.
func benchHeapProfileNamed(t *testing.T, name string) {
	dir := os.Getenv("AIRD_BENCH_HEAPPROFILE")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name+".heap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}

// benchWait polls cond every benchPoll and returns how long it took.
func benchWait(t *testing.T, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, msg := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > benchTimeout {
			t.Fatalf("%s: not within %s; last: %s", what, benchTimeout, msg)
		}
		time.Sleep(benchPoll)
	}
}

// procStatusMB reads a kB field of /proc/self/status, in MB (2^20 bytes).
func procStatusMB(t *testing.T, field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return kb / 1024
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchReport prints every run and the summary table, on stdout, as lines
// starting with BENCH (bench/bgp/run.sh keeps those).
func benchReport(results []benchResult, sizes []int, who string) {
	fmt.Println("BENCH connect: the " + who + " opens the session")
	fmt.Println("BENCH runs: kind N run established_ms total_ms transfer_ms rss_mb peak_mb heap_mb settled_rss_mb settled_heap_mb")
	for _, r := range results {
		fmt.Printf("BENCH run  %s %d %d %.0f %.0f %.0f %.1f %.1f %.1f %.1f %.1f\n",
			r.Kind, r.N, r.Run, r.EstablishedMS, r.TotalMS, r.transferMS(), r.RSSMB, r.HWMMB, r.HeapMB, r.SettledRSSMB, r.SettledHeapMB)
	}
	fmt.Println("BENCH")
	fmt.Printf("BENCH %-7s %9s %9s %7s %13s %13s %7s %11s %12s %14s\n",
		"N", "BIRD ms", "aird ms", "ratio", "BIRD xfer ms", "aird xfer ms", "ratio", "aird RSS MB", "aird heap MB", "settled RSS MB")
	for _, n := range sizes {
		var bt, at, bx, ax, rss, heap, srss []float64
		for _, r := range results {
			if r.N != n {
				continue
			}
			if r.Kind == "bird" {
				bt, bx = append(bt, r.TotalMS), append(bx, r.transferMS())
			} else {
				at, ax = append(at, r.TotalMS), append(ax, r.transferMS())
				rss, heap = append(rss, r.RSSMB), append(heap, r.HeapMB)
				srss = append(srss, r.SettledRSSMB)
			}
		}
		mb, ma, mbx, mx := median(bt), median(at), median(bx), median(ax)
		fmt.Printf("BENCH %-7d %9.0f %9.0f %7.2f %13.0f %13.0f %7.2f %11.1f %12.1f %14.1f\n",
			n, mb, ma, ma/mb, mbx, mx, mx/mbx, median(rss), median(heap), median(srss))
	}
	fmt.Println("BENCH (medians over runs; total = from enable/Start until the receiver holds N; xfer = total minus time to Established)")
}
