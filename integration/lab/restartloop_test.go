package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

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
	window := func(i, kind int, name string, disrupt func() error) {
		before := snapshot()
		began := time.Now()
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
	}
	cancel()
	failed, late := 0, 0
	for range 2 {
		r := <-results
		t.Log(r)
		failed += r.Failed
		late += r.Causes[CauseClient]
	}
	last := snapshot()
	t.Logf("over %d restarts: client %s", n, last.Client.Sub(first.Client))
	t.Logf("quiet windows, restart windows: SYN retransmissions in the client %d, %d; packets dropped by the nodes' data plane %d, %d; by the kernels %d, %d; requests failed: %d",
		synRetrans[0], synRetrans[1], drops[0], drops[1], kdrops[0], kdrops[1], failed)
	t.Logf("over the run, the kernels: %s", last.Kernel.Sub(first.Kernel))
	cancel()
	_ = dump.Wait()
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
