package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// TestRackRestartLoop restarts lb1's aird AIRD_LAB_RESTARTS times (at most
// 100; skipped without it) the way `systemctl restart` does (exit for a
// restart, a new process at once) under continuous HTTP traffic to both
// VIPs, and reports for each restart what the client's kernel and every
// node's data plane counted meanwhile: SYNs the client retransmitted, the
// nodes' drops and passes to the kernel. It is the tool that tells a
// packet lost around a restart from a client that was too slow to see its
// answer (docs/lab.md, "Restarts under load"); it fails like
// TestRackRestarts on a request lost, and on a packet any node dropped.
func TestRackRestartLoop(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("AIRD_LAB_RESTARTS"))
	if n <= 0 {
		t.Skip("set AIRD_LAB_RESTARTS=N (1-100) to restart lb1 N times under traffic")
	}
	n = min(n, 100)
	l := upLab(t)
	lb1 := l.LBs[0]
	// The node whose aird AIRD_LAB_RESTART_CONTROLS pauses (lb1 unless
	// it names another).
	paused := lb1
	for _, n := range l.AllNodes() {
		if n.Name == os.Getenv("AIRD_LAB_RESTART_CONTROLS") {
			paused = n
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// What lb1's kernel answers with "destination unreachable" while its
	// aird is away (at most 5,000 ICMP packets, until the run ends).
	dump := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+lb1.NS, "tcpdump", "-nn", "-l", "-v", "-c", "5000", "-i", "any",
		"icmp6 or icmp")
	var unreach testutil.SyncBuffer
	dump.Stdout, dump.Stderr = &unreach, &unreach
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dump.Wait() }()
	// Every change the kernels of the ToRs and of lb1 make (routes,
	// neighbours, links, addresses), timestamped.
	var changes testutil.SyncBuffer
	for _, ns := range []string{l.Tor1.NS, l.Tor2.NS, lb1.NS} {
		mon := exec.CommandContext(ctx, "ip", "-n", ns, "-ts", "monitor", "all")
		w := &prefixWriter{prefix: ns + " ", w: &changes}
		mon.Stdout, mon.Stderr = w, w
		if err := mon.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = mon.Wait() }()
	}
	results := make(chan Result, 2)
	for _, vip := range []string{VIP6, VIP4} {
		go func() {
			r, err := l.Traffic(ctx, Load{Kind: HTTP, VIP: vip, Duration: 30 * time.Minute, Workers: 4})
			if err != nil {
				t.Error(err)
			}
			results <- r
		}()
	}
	snapshot := func() Snapshot {
		s, err := l.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := snapshot()
	var synRetrans, drops, kdrops [2]uint64 // quiet windows, restart windows
	var restarts []time.Time
	window := func(i, kind int, name string, disrupt func() error) {
		before := snapshot()
		began := time.Now()
		if kind == 1 {
			restarts = append(restarts, began)
		}
		if err := disrupt(); err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		if err := l.waitServing(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		after := snapshot()
		t.Logf("%s %d at %s (%s):", name, i, began.Format("15:04:05.000"), took.Round(time.Millisecond))
		synRetrans[kind] += after.Client["TcpExt.TCPSynRetrans"] - before.Client["TcpExt.TCPSynRetrans"]
		if strings.HasPrefix(name, "paused") {
			// Nothing waits for a stopped aird (attachXDPPass).
			c := after.Client.Sub(before.Client)
			if c["TcpExt.TCPSynRetrans"]+c["Tcp.RetransSegs"] != 0 {
				t.Errorf("%s %d: the client sent %d SYNs and %d segments again while %s's aird was stopped", name, i, c["TcpExt.TCPSynRetrans"], c["Tcp.RetransSegs"], paused.Name)
			}
		}
		d, k := after.report(func(f string, a ...any) { t.Logf("  "+f, a...) }, before)
		drops[kind] += d
		kdrops[kind] += k
	}
	for i := 1; i <= n; i++ {
		if err := l.WaitRestartsDone(2 * time.Minute); err != nil {
			t.Fatal(err)
		}
		// The same window without a restart: what the load alone does.
		window(i, 0, "quiet", func() error { time.Sleep(2 * time.Second); return nil })
		window(i, 1, "restart", func() error { return lb1.Restart("") })
		if os.Getenv("AIRD_LAB_RESTART_CONTROLS") != "" {
			// A node's aird stopped for 2 s (nothing exits, nothing starts),
			// and the kernel work of a start without aird: the data
			// plane's objects loaded (verified, JITed) and dropped.
			window(i, 0, "paused "+paused.Name, func() error {
				stop := traceTCP(t, l, fmt.Sprintf("paused%d", i))
				defer stop()
				if err := paused.Signal(syscall.SIGSTOP); err != nil {
					return err
				}
				time.Sleep(2 * time.Second)
				return paused.Signal(syscall.SIGCONT)
			})
			window(i, 0, "bpf-load", func() error {
				spec, err := bpf.LoadDatapath()
				if err != nil {
					return err
				}
				coll, err := ebpf.NewCollection(spec)
				if err != nil {
					return err
				}
				coll.Close()
				return nil
			})
		}
	}
	cancel()
	failed, late := 0, 0
	var retrans []RetransSpan
	for range 2 {
		r := <-results
		t.Log(r)
		failed += r.Failed
		late += r.Causes[CauseClient]
		retrans = append(retrans, r.Retrans...)
	}
	// When the requests with a segment sent again ended, from the start
	// of the restart before them.
	sort.Slice(retrans, func(i, j int) bool { return retrans[i].End.Before(retrans[j].End) })
	for _, r := range retrans {
		at := r.End
		i := sort.Search(len(restarts), func(i int) bool { return restarts[i].After(at) }) - 1
		where := "before the first restart"
		if i >= 0 {
			where = fmt.Sprintf("%s after restart %d began", at.Sub(restarts[i]).Round(time.Millisecond), i+1)
		}
		t.Logf("%d segments sent again: a request of %s ended at %s, %s", r.Segments, r.Took.Round(time.Millisecond), at.Format("15:04:05.000"), where)
	}
	t.Logf("lb1's aird around the restarts (its log from 1 s before each to 5 s after):\n%s", logAround(lb1.LogTail(100000), restarts))
	last := snapshot()
	t.Logf("over %d restarts: client %s", n, last.Client.Sub(first.Client))
	t.Logf("quiet windows, restart windows: SYN retransmissions in the client %d, %d; packets dropped by the nodes' data plane %d, %d; by the kernels %d, %d; requests failed: %d",
		synRetrans[0], synRetrans[1], drops[0], drops[1], kdrops[0], kdrops[1], failed)
	t.Logf("over the run, the kernels: %s", last.Kernel.Sub(first.Kernel))
	cancel()
	_ = dump.Wait()
	t.Logf("the kernels' changes (ip monitor all) in tor1, tor2 and lb1:\n%s", changes.String())
	t.Logf("lb1's destination unreachables (tcpdump):\n%s", summarizeUnreachables(unreach.String()))
	if failed-late != 0 {
		t.Errorf("%d requests failed (and %d because the client was late)", failed-late, late)
	}
	if drops[0]+drops[1] != 0 {
		t.Errorf("the nodes' data plane dropped %d packets", drops[0]+drops[1])
	}
}

// summarizeUnreachables counts tcpdump -v lines of ICMP unreachables by
// what they say (the packet they answer); out itself when there is none.
func summarizeUnreachables(out string) string {
	counts := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, "destination unreachable")
		if i < 0 {
			i = strings.Index(line, "unreachable")
		}
		if i < 0 {
			continue
		}
		counts[line[i:]]++
	}
	var b strings.Builder
	if len(counts) == 0 {
		return out
	}
	for k, v := range counts {
		fmt.Fprintf(&b, "  %5d  %s\n", v, k)
	}
	return b.String()
}

// logAround returns the lines of an aird log (time=... first) from 1 s
// before to 5 s after each of times.
func logAround(log string, times []time.Time) string {
	var b strings.Builder
	for _, line := range strings.Split(log, "\n") {
		ts, _, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		for i, r := range times {
			if at.After(r.Add(-time.Second)) && at.Before(r.Add(5*time.Second)) {
				fmt.Fprintf(&b, "  restart %d %+7dms %s\n", i+1, at.Sub(r).Milliseconds(), line)
				break
			}
		}
	}
	return b.String()
}

// prefixWriter writes each line it is given with a prefix.
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			if _, err := io.WriteString(p.w, p.prefix+line); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}

// traceTCP captures port-80 TCP headers in the client, both ToRs and every
// endpoint (pcap files in $AIRD_LAB_TRACE/NAME-NS.pcap) until the returned
// function is called (it waits 1 s more); nothing without AIRD_LAB_TRACE.
func traceTCP(t *testing.T, l *Lab, name string) func() {
	dir := os.Getenv("AIRD_LAB_TRACE")
	if dir == "" {
		return func() {}
	}
	nss := []string{l.Client, l.Tor1.NS, l.Tor2.NS}
	for _, e := range l.Servers {
		nss = append(nss, e.NS)
	}
	var cmds []*exec.Cmd
	for _, ns := range nss {
		c := exec.Command("nsenter", "--net=/run/netns/"+ns, "tcpdump", "-i", "any", "-s", "160", "-U", "-w", dir+"/"+name+"-"+ns+".pcap", "tcp port 80 or ip6 proto 41 or ip6 proto 4")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	time.Sleep(time.Second)
	return func() {
		time.Sleep(time.Second)
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGINT)
			_ = c.Wait()
		}
	}
}
