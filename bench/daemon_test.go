package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// Environment knobs of BenchmarkDaemonScale (bench/daemon.sh sets them):
//
//	AIRD_BENCH_VIPS      services (default 10000)
//	AIRD_BENCH_PER_VIP   backends per service (default 100)
//	AIRD_BENCH_POOL      distinct backend addresses they are drawn from (2000)
//	AIRD_BENCH_LAYOUT    "single" (one file), "split" (100 files included
//	                     from services.d) or both (default); "starts": the
//	                     one-file cold start and restart alone;
//	                     "restarts": restarts alternating between builds
//	                     (restarts.go)
//	AIRD_BENCH_PROFILE   a directory: each aird writes a CPU profile of its
//	                     run there (AIRD_CPU_PROFILE), aird-N.pprof
//	AIRD_BENCH_AIRD      an aird binary to run instead of this tree's (an
//	                     older build, for before and after in one session)
func scaleFromEnv(b *testing.B) testutil.LBScale {
	get := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	return testutil.LBScale{VIPs: get("AIRD_BENCH_VIPS", 10000), PerVIP: get("AIRD_BENCH_PER_VIP", 100),
		Pool: get("AIRD_BENCH_POOL", 2000), Seed: 1}
}

// BenchmarkDaemonScale runs the real aird (the binary, under nsenter in a
// namespace of its own) with AIRD_BENCH_VIPS services of AIRD_BENCH_PER_VIP
// backends each and reports what docs/performance.md tabulates: time from
// exec to READY=1 on a cold start (no pins) and on a restart that adopts
// the pins, aird's RSS after READY and its peak before (VmHWM), the locked kernel memory of all its
// maps (pinned maps and every Maglev table, memlock from fdinfo), and the
// time of a reload (POST /v1/reload, which returns once applied) that
// changes one service (twice: moved to another port and back), and of one
// that changes a backend's weight in every service; what one /metrics scrape costs aird (time, bytes allocated,
// size), and the time of `airctl lb services` for every service and for
// one VIP. Run it with -benchtime 1x; it needs root.
func BenchmarkDaemonScale(b *testing.B) {
	testutil.RequirePrivileged(b)
	testutil.RequireCommand(b, "nsenter")
	sc := scaleFromEnv(b)
	d := newBenchDaemon(b, sc)
	layout := os.Getenv("AIRD_BENCH_LAYOUT")
	for range b.N {
		if layout == "starts" {
			d.startsOnly()
			continue
		}
		if layout == "restarts" {
			d.restartsOnly()
			continue
		}
		if layout != "split" {
			d.writeConfig(nil, 80)
			cold := d.measuredStart()
			maps, tables := d.mapMemory()
			scrapeT, scrapeAlloc, scrapeSize := d.scrapes()
			ca := d.cpu()
			listT, listN := d.airctl("lb", "services")
			listCPU := d.cpu() - ca
			oneT, _ := d.airctl("lb", "services", d.sc.VIP(5000%d.sc.VIPs).String())
			c0 := d.cpu()
			one := d.reload(nil, 81)
			c1 := d.cpu()
			again := d.reload(nil, 80)
			c1b := d.cpu()
			all := d.reload(func(i, j int) int {
				if j == 0 {
					return 50
				}
				return 100
			}, 81)
			c2 := d.cpu()
			d.stopForRestart()
			warm := d.measuredStart()
			d.stop()
			d.cleanup()
			reportStarts(b, cold, warm)
			b.ReportMetric(c1-c0, "reload-one-cpu-s")
			b.ReportMetric(c1b-c1, "reload-one-again-cpu-s")
			b.ReportMetric(c2-c1b, "reload-weights-cpu-s")
			b.ReportMetric(maps/(1<<20), "maps-MB")
			b.ReportMetric(float64(tables), "tables")
			b.ReportMetric(float64(one.Milliseconds()), "reload-one-ms")
			b.ReportMetric(float64(again.Milliseconds()), "reload-one-again-ms")
			b.ReportMetric(float64(all.Milliseconds()), "reload-weights-ms")
			b.ReportMetric(float64(scrapeT.Milliseconds()), "scrape-ms")
			b.ReportMetric(scrapeAlloc/(1<<20), "scrape-alloc-MB")
			b.ReportMetric(scrapeSize/(1<<20), "scrape-body-MB")
			b.ReportMetric(float64(listT.Milliseconds()), "lb-services-ms")
			b.ReportMetric(listCPU, "lb-services-cpu-s")
			b.ReportMetric(float64(listN), "lb-services-lines")
			b.ReportMetric(float64(oneT.Milliseconds()), "lb-services-one-vip-ms")
		}
		if layout != "single" {
			d.splitRun().report(b)
		}
	}
	b.ReportMetric(0, "ns/op")
}

// startsOnly runs the one-file layout's cold start and restart, and
// nothing between them (AIRD_BENCH_LAYOUT=starts): before and after of a
// change to the start, several builds in one session.
func (d *benchDaemon) startsOnly() {
	d.writeConfig(nil, 80)
	cold := d.measuredStart()
	d.stopForRestart()
	warm := d.measuredStart()
	d.stop()
	d.cleanup()
	reportStarts(d.b, cold, warm)
}

// startFigures are one start's: exec to READY, aird's CPU up to then, its
// RSS settled after READY and the peak of the start (VmHWM).
type startFigures struct {
	ready          time.Duration
	cpu, rss, peak float64
}

// rssSettle is how long after READY the RSS is read: aird hands the
// start's memory back to the kernel once it is ready.
const rssSettle = 2 * time.Second

// measuredStart starts aird and reads its figures: time and CPU at
// READY, RSS rssSettle later.
func (d *benchDaemon) measuredStart() startFigures {
	ready := d.start()
	cpu := d.cpu()
	time.Sleep(rssSettle)
	return startFigures{ready: ready, cpu: cpu, rss: d.rss(), peak: d.rssPeak()}
}

// reportStarts publishes a cold start's figures and a restart's.
func reportStarts(b *testing.B, cold, warm startFigures) {
	b.ReportMetric(cold.ready.Seconds(), "ready-cold-s")
	b.ReportMetric(cold.cpu, "ready-cold-cpu-s")
	b.ReportMetric(warm.ready.Seconds(), "ready-restart-s")
	b.ReportMetric(warm.cpu, "ready-restart-cpu-s")
	b.ReportMetric(cold.rss/(1<<20), "rss-MB")
	b.ReportMetric(warm.rss/(1<<20), "rss-restart-MB")
	b.ReportMetric(cold.peak/(1<<20), "rss-peak-MB")
	b.ReportMetric(warm.peak/(1<<20), "rss-restart-peak-MB")
}

// splitFigures are the figures of the same services split into files.
type splitFigures struct {
	cold, warm, one, again           time.Duration
	coldCPU, warmCPU, oneCPU, again2 float64
	rss                              float64
}

func (f splitFigures) report(b *testing.B) {
	b.ReportMetric(f.cold.Seconds(), "split-ready-cold-s")
	b.ReportMetric(f.coldCPU, "split-ready-cold-cpu-s")
	b.ReportMetric(f.warm.Seconds(), "split-ready-restart-s")
	b.ReportMetric(f.warmCPU, "split-ready-restart-cpu-s")
	b.ReportMetric(float64(f.one.Microseconds())/1000, "split-reload-one-ms")
	b.ReportMetric(f.oneCPU*1000, "split-reload-one-cpu-ms")
	b.ReportMetric(float64(f.again.Microseconds())/1000, "split-reload-one-again-ms")
	b.ReportMetric(f.again2*1000, "split-reload-one-again-cpu-ms")
	b.ReportMetric(f.rss/(1<<20), "split-rss-MB")
}

// splitRun runs aird with the same services split into splitFiles files
// of services.d (include = ["services.d/*.toml"]): READY cold, a reload
// that changes one service (its file is rewritten), the same again
// (moving it back), READY on a restart adopting the pins.
func (d *benchDaemon) splitRun() splitFigures {
	d.b.Helper()
	var f splitFigures
	d.split = true
	defer func() { d.split = false }()
	d.writeConfig(nil, 80)
	f.cold = d.start()
	f.coldCPU = d.cpu()
	f.rss = d.rss()
	c0 := d.cpu()
	f.one = d.reload(nil, 81)
	c1 := d.cpu()
	f.again = d.reload(nil, 80)
	c2 := d.cpu()
	f.oneCPU, f.again2 = c1-c0, c2-c1
	d.stopForRestart()
	f.warm = d.start()
	f.warmCPU = d.cpu()
	d.stop()
	d.cleanup()
	return f
}

// splitFiles is how many files the split layout has.
const splitFiles = 100

// writeSplit writes the split layout: the main file, and the files of
// services.d, all of them or (a reload) the first one only.
func (d *benchDaemon) writeSplit(head string, port int, all bool) {
	dir := filepath.Join(d.dir, "services.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		d.b.Fatal(err)
	}
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			d.b.Fatal(err)
		}
	}
	write(d.cfg, "include = [\"services.d/*.toml\"]\n\n"+head+d.sc.PoolTOML())
	per := (d.sc.VIPs + splitFiles - 1) / splitFiles
	for k := 0; k*per < d.sc.VIPs; k++ {
		if k > 0 && !all {
			break
		}
		body := d.sc.ServicesTOML(nil, k*per, min((k+1)*per, d.sc.VIPs))
		if k == 0 {
			body = movePort(body, d.sc.VIP(0).String(), port)
		}
		write(filepath.Join(dir, fmt.Sprintf("%03d.toml", k)), body)
	}
}

// movePort moves service 0 (s0 on vip) from port 80 to port.
func movePort(body, vip string, port int) string {
	if port == 80 {
		return body
	}
	return strings.Replace(body, "name = \"s0\"\nvip = \""+vip+"\"\nport = 80\n",
		"name = \"s0\"\nvip = \""+vip+"\"\nport = "+strconv.Itoa(port)+"\n", 1)
}

type benchDaemon struct {
	b                  *testing.B
	sc                 testutil.LBScale
	aird, ns, dir, pin string
	cfg, sock, notify  string
	cmd                *exec.Cmd
	exited             chan error
	notes              chan string
	log                *testutil.SyncBuffer
	split              bool   // the services are in services.d (splitRun)
	splitWritten       bool   // every file of services.d is written
	starts             int    // processes started, to name profiles
	state              string // the state directory's name in dir ("": state)
}

func newBenchDaemon(b *testing.B, sc testutil.LBScale) *benchDaemon {
	aird := os.Getenv("AIRD_BENCH_AIRD")
	if aird == "" {
		aird, _ = testutil.Binaries(b)
	}
	d := &benchDaemon{b: b, sc: sc, aird: aird, ns: testutil.NewNetns(b, "bscale"), dir: b.TempDir(),
		pin: testutil.TempPinPath(b), notes: make(chan string, 64), log: &testutil.SyncBuffer{}}
	d.cfg, d.sock, d.notify = filepath.Join(d.dir, "aird.toml"), filepath.Join(d.dir, "run", "aird.sock"), filepath.Join(d.dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: d.notify, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			d.notes <- string(buf[:n])
		}
	}()
	b.Cleanup(func() {
		if d.cmd != nil && d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
		d.cleanup()
		if b.Failed() {
			b.Logf("aird log:\n%s", d.log.String())
		}
	})
	return d
}

// metricsAddr is where aird serves /metrics, inside its namespace.
const metricsAddr = "127.0.0.1:9469"

// writeConfig writes the configuration: backend weights (nil: the
// default) and service 0's port (moving it removes a service and adds
// one). With d.split, the services go to services.d (writeSplit), where a
// reload rewrites only the first file (weight is not supported there).
func (d *benchDaemon) writeConfig(weight func(i, j int) int, port int) {
	head := fmt.Sprintf("[node]\nname = \"bench\"\nunderlay = [\"fd00:100:1::1\"]\n\n[datapath]\npin-path = %q\n\n[api]\nsocket = %q\n\n[metrics]\nlisten = %q\n\n[log]\nlevel = \"warn\"\n\n",
		d.pin, d.sock, metricsAddr)
	if d.split {
		d.writeSplit(head, port, !d.splitWritten)
		d.splitWritten = true
		return
	}
	body := movePort(head+d.sc.TOML(weight), d.sc.VIP(0).String(), port)
	if err := os.WriteFile(d.cfg, []byte(body), 0o600); err != nil {
		d.b.Fatal(err)
	}
}

// start runs aird and returns the time from exec to READY=1.
func (d *benchDaemon) start() time.Duration {
	d.b.Helper()
	d.cmd = exec.Command("nsenter", "--net=/run/netns/"+d.ns, d.aird, "--config", d.cfg)
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+d.notify, "STATE_DIRECTORY="+filepath.Join(d.dir, cmp.Or(d.state, "state")))
	if dir := os.Getenv("AIRD_BENCH_PROFILE"); dir != "" { // a CPU profile of each process's run
		d.starts++
		d.cmd.Env = append(d.cmd.Env, fmt.Sprintf("AIRD_CPU_PROFILE=%s/aird-%d.pprof", dir, d.starts))
	}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	for len(d.notes) > 0 { // an earlier process's messages (its reloads say READY=1 too)
		<-d.notes
	}
	start := time.Now()
	if err := d.cmd.Start(); err != nil {
		d.b.Fatal(err)
	}
	d.exited = make(chan error, 1)
	go func(c *exec.Cmd) { d.exited <- c.Wait() }(d.cmd)
	d.wait("READY=1", 10*time.Minute)
	return time.Since(start)
}

func (d *benchDaemon) wait(what string, timeout time.Duration) {
	d.b.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case n := <-d.notes:
			if strings.Contains(n, what) {
				return
			}
		case err := <-d.exited:
			d.b.Fatalf("aird exited waiting for %s: %v\n%s", what, err, d.log.String())
		case <-deadline:
			d.b.Fatalf("no %s from aird within %s", what, timeout)
		}
	}
}

func (d *benchDaemon) stopWith(sig syscall.Signal) {
	d.b.Helper()
	_ = d.cmd.Process.Signal(sig)
	select {
	case err := <-d.exited:
		if err != nil {
			d.b.Fatalf("aird exited with %v", err)
		}
	case <-time.After(2 * time.Minute):
		d.b.Fatal("aird did not stop")
	}
}

func (d *benchDaemon) stop()           { d.stopWith(syscall.SIGTERM) }
func (d *benchDaemon) stopForRestart() { d.stopWith(syscall.SIGUSR2) }

func (d *benchDaemon) cleanup() {
	_ = exec.Command("nsenter", "--net=/run/netns/"+d.ns, d.aird, "--cleanup", "--config", d.cfg).Run()
}

// reload rewrites the configuration and returns how long the applying
// reload took.
func (d *benchDaemon) reload(weight func(i, j int) int, port int) time.Duration {
	d.b.Helper()
	d.writeConfig(weight, port)
	var res api.ReloadResult
	start := time.Now()
	if err := api.NewClient(d.sock).Do(context.Background(), "POST", "/v1/reload", nil, &res); err != nil || !res.OK {
		d.b.Fatalf("reload: %v %s", err, res.Error)
	}
	return time.Since(start)
}

// statFields returns the fields of aird's /proc/PID/stat after the
// command (which may hold spaces) in parentheses: the line's third field
// first.
func (d *benchDaemon) statFields() []string {
	d.b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		d.b.Fatal(err)
	}
	return strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
}

// cpu returns the CPU time aird has used (user and system, all threads),
// in seconds: unlike wall time, it does not grow with other load on the
// machine.
func (d *benchDaemon) cpu() float64 {
	d.b.Helper()
	// utime and stime are the 14th and 15th fields of the line.
	f := d.statFields()
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		d.b.Fatalf("parse /proc/%d/stat: %v %v", d.cmd.Process.Pid, err1, err2)
	}
	return (ut + st) / 100 // USER_HZ
}

// rss returns aird's resident set in bytes.
func (d *benchDaemon) rss() float64 { return d.status("VmRSS:") }

// rssPeak is the highest RSS aird has had (VmHWM): at READY, the peak of
// its start.
func (d *benchDaemon) rssPeak() float64 { return d.status("VmHWM:") }

// status reads a field of aird's /proc/PID/status in kB, as bytes.
func (d *benchDaemon) status(field string) float64 {
	d.b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		d.b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				d.b.Fatal(err)
			}
			return kb * 1024
		}
	}
	d.b.Fatal("no " + field)
	return 0
}

// mapMemory sums the memlock the kernel charges for every pinned map and
// every inner map of maglev (each once), and counts those tables.
func (d *benchDaemon) mapMemory() (bytes float64, tables int) {
	d.b.Helper()
	entries, err := os.ReadDir(filepath.Join(d.pin, "maps"))
	if err != nil {
		d.b.Fatal(err)
	}
	seen := map[ebpf.MapID]bool{}
	for _, e := range entries {
		m, err := ebpf.LoadPinnedMap(filepath.Join(d.pin, "maps", e.Name()), nil)
		if err != nil {
			d.b.Fatal(err)
		}
		bytes += memlock(d.b, m)
		if e.Name() == bpf.DatapathMapMaglevV2 {
			var k uint32
			var id ebpf.MapID
			it := m.Iterate()
			for it.Next(&k, &id) {
				if seen[id] {
					continue
				}
				seen[id] = true
				inner, err := ebpf.NewMapFromID(id)
				if err != nil {
					d.b.Fatal(err)
				}
				bytes += memlock(d.b, inner)
				inner.Close()
			}
			if err := it.Err(); err != nil {
				d.b.Fatal(err)
			}
		}
		m.Close()
	}
	return bytes, len(seen)
}

// memlock reads the memlock line of a map's fdinfo.
func memlock(b *testing.B, m *ebpf.Map) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", m.FD()))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "memlock:"); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal(errors.New("no memlock in fdinfo"))
	return 0
}

// scrapes scrapes /metrics three times (curl in aird's namespace) and
// returns the mean time of the last two, the bytes aird allocated per
// scrape (its go_memstats_alloc_bytes_total, read within each scrape:
// the difference between the first and the third over two) and the size
// of a scrape.
func (d *benchDaemon) scrapes() (time.Duration, float64, float64) {
	d.b.Helper()
	var times []time.Duration
	var allocs []float64
	var size float64
	for range 3 {
		start := time.Now()
		out, err := exec.Command("nsenter", "--net=/run/netns/"+d.ns, "curl", "-sfS", "http://"+metricsAddr+"/metrics").Output()
		if err != nil {
			d.b.Fatalf("scrape: %v", err)
		}
		times = append(times, time.Since(start))
		size = float64(len(out))
		v := -1.0
		for _, line := range strings.Split(string(out), "\n") {
			if f, ok := strings.CutPrefix(line, "go_memstats_alloc_bytes_total "); ok {
				if v, err = strconv.ParseFloat(f, 64); err != nil {
					d.b.Fatal(err)
				}
			}
		}
		if v < 0 {
			d.b.Fatal("no go_memstats_alloc_bytes_total in the scrape")
		}
		allocs = append(allocs, v)
	}
	return (times[1] + times[2]) / 2, (allocs[2] - allocs[0]) / 2, size
}

// airctl runs airctl against the daemon and returns its wall time and
// the lines it printed.
func (d *benchDaemon) airctl(args ...string) (time.Duration, int) {
	d.b.Helper()
	_, airctl := testutil.Binaries(d.b)
	start := time.Now()
	out, err := exec.Command(airctl, append([]string{"--socket", d.sock}, args...)...).Output()
	if err != nil {
		d.b.Fatalf("airctl %v: %v", args, err)
	}
	return time.Since(start), strings.Count(string(out), "\n")
}
