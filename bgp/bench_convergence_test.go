package bgp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
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
//   - bird: a BIRD sender with N static /128s and its BGP protocol
//     disabled peers with a passive BIRD receiver; the clock starts at
//     `birdc enable node1` on the sender and stops when the receiver's
//     `show route protocol node1 count` reaches N (polled every 20 ms);
//   - aird: the speaker (New, SetAdvertised with the same N /128s, Start)
//     in the node namespace with the same passive BIRD receiver; the clock
//     starts at Start and stops when the receiver holds N. The inner
//     process then runs runtime.GC() and reads VmRSS and VmHWM.
//
// Both also record when the receiver first shows the session Established
// (same poll), to split session set-up (connect timers: BIRD waits 0.75-1
// s before its first connect, GoBGP 1.5-2 s) from route transfer.
//
// AIRD_BENCH_N (comma-separated, default 10000,100000) and
// AIRD_BENCH_RUNS (default 3) choose the sizes; AIRD_BENCH_CPUPROFILE=DIR
// writes a CPU profile of each aird run (Start to N in BIRD) to DIR.

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
	benchReport(results, sizes)
}

// benchReceiverConf is the receiving BIRD, the same for both runs: a
// passive eBGP session (AS 65101) with the sender, importing everything,
// exporting nothing, no kernel protocol.
func benchReceiverConf(peer string) string {
	return fmt.Sprintf(`router id 10.255.0.1;
log stderr { warning, error, fatal };
protocol device { scan time 10; }
protocol bgp node1 {
  local as 65101; neighbor %s as 65001;
  passive on;
  ipv6 { import all; export none; };
  ipv4 { import all; export none; extended next hop on; };
}
`, peer)
}

// benchSenderConf is the sending BIRD: the same N /128s as the speaker
// gets, exported over a BGP protocol that starts disabled.
func benchSenderConf(peer string, n int) string {
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
	fmt.Fprintf(&b, `protocol bgp node1 {
  disabled;
  local as 65001; neighbor %s as 65101;
  connect delay time 0; connect retry time 1; error wait time 1, 2;
  ipv6 { import none; export where source = RTS_STATIC; };
  ipv4 { import none; export none; extended next hop on; };
}
`, peer)
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

func benchBIRDEstablished(b *testutil.BIRD) bool {
	out, _ := b.Cmd("show", "protocols", "node1")
	for _, m := range birdProtoRE.FindAllStringSubmatch(out, -1) {
		if m[1] == "node1" {
			return m[4] == "Established"
		}
	}
	return false
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
	recv := testutil.StartBIRD(t, nsR, benchReceiverConf(addrS))
	send := testutil.StartBIRD(t, nsS, benchSenderConf(addrR, n))
	// The sender has loaded its statics before the clock starts.
	benchWait(t, "sender holds its statics", func() (bool, string) {
		c := benchBIRDCount(send, "static6", "master6")
		return c == n, fmt.Sprintf("%d routes", c)
	})

	start := time.Now()
	send.MustCmd(t, "enable", "node1")
	var est time.Duration
	benchWait(t, "receiver holds all the routes", func() (bool, string) {
		if est == 0 && benchBIRDEstablished(recv) {
			est = time.Since(start)
		}
		c := benchBIRDCount(recv, "node1", "master6")
		return c == n, fmt.Sprintf("%d routes", c)
	})
	total := time.Since(start)
	if est == 0 {
		est = total
	}
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
		tor := l.link(t, "tor1")
		l.startBIRD(t, tor, func(tor torSpec) string { return benchReceiverConf(tor.NodeAddr) })
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
	t.Logf("aird→bird N=%d run %d: established %.0f ms, all in receiver %.0f ms, RSS %.1f MB (peak %.1f MB)",
		n, run, res.EstablishedMS, res.TotalMS, res.RSSMB, res.HWMMB)
	return res, true
}

func benchAirdInner(t *testing.T, l labSpec, n, run int) benchResult {
	tor := l.Tors[0]
	sp := newSpeaker(t, l, nodeTOML(l)+fmt.Sprintf(`
[bgp]
asn = 65001
connect-retry = "1s"
[[bgp.peers]]
name = "tor1"
address = %q
asn = 65101
`, tor.Addr))
	routes := prefixes(benchBase, n)
	setStart := time.Now()
	if err := sp.SetAdvertised(routes); err != nil {
		t.Fatal(err)
	}
	t.Logf("SetAdvertised(%d) before Start: %s", n, time.Since(setStart).Round(time.Millisecond))

	if dir := os.Getenv("AIRD_BENCH_CPUPROFILE"); dir != "" {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("aird-n%d-run%d.pprof", n, run)))
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	if err := sp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Stop(StopShutdown) })
	startCall := time.Since(start)
	b := tor.bird()
	var est time.Duration
	benchWait(t, "BIRD holds all the routes", func() (bool, string) {
		if est == 0 && benchBIRDEstablished(b) {
			est = time.Since(start)
		}
		c := benchBIRDCount(b, "node1", "master6")
		return c == n, fmt.Sprintf("%d routes", c)
	})
	total := time.Since(start)
	if est == 0 {
		est = total
	}
	runtime.GC()
	rss, hwm := procStatusMB(t, "VmRSS"), procStatusMB(t, "VmHWM")
	t.Logf("Start returned after %s; established %s; all %d in BIRD %s; RSS %.1f MB, peak %.1f MB",
		startCall.Round(time.Millisecond), est.Round(time.Millisecond), n, total.Round(time.Millisecond), rss, hwm)
	return benchResult{Kind: "aird", N: n, Run: run, EstablishedMS: ms(est), TotalMS: ms(total), RSSMB: rss, HWMMB: hwm}
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
func benchReport(results []benchResult, sizes []int) {
	fmt.Println("BENCH runs: kind N run established_ms total_ms transfer_ms rss_mb peak_mb")
	for _, r := range results {
		fmt.Printf("BENCH run  %s %d %d %.0f %.0f %.0f %.1f %.1f\n",
			r.Kind, r.N, r.Run, r.EstablishedMS, r.TotalMS, r.transferMS(), r.RSSMB, r.HWMMB)
	}
	fmt.Println("BENCH")
	fmt.Printf("BENCH %-7s %9s %9s %7s %13s %13s %7s %10s\n",
		"N", "BIRD ms", "aird ms", "ratio", "BIRD xfer ms", "aird xfer ms", "ratio", "aird RSS MB")
	for _, n := range sizes {
		var bt, at, bx, ax, rss []float64
		for _, r := range results {
			if r.N != n {
				continue
			}
			if r.Kind == "bird" {
				bt, bx = append(bt, r.TotalMS), append(bx, r.transferMS())
			} else {
				at, ax, rss = append(at, r.TotalMS), append(ax, r.transferMS()), append(rss, r.RSSMB)
			}
		}
		mb, ma, mbx, mx := median(bt), median(at), median(bx), median(ax)
		fmt.Printf("BENCH %-7d %9.0f %9.0f %7.2f %13.0f %13.0f %7.2f %10.1f\n",
			n, mb, ma, ma/mb, mbx, mx, mx/mbx, median(rss))
	}
	fmt.Println("BENCH (medians over runs; total = from enable/Start until the receiver holds N; xfer = total minus time to Established)")
}
