package bgp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The learned-routes benchmark watches the FIB table from a process of its
// own (this test binary, re-run as TestBenchFIBWatcher): the watcher
// parses one rtnetlink message per route and keeps a set of 100,000
// prefixes, and in the speaker's process that work and memory would be
// charged to aird (its CPU, its GC and its RSS) and not to BIRD. The
// watcher reports on stdout, one line per change of interest:
//
//	FIBWATCH ready
//	FIBWATCH count <prefixes> <unix nanoseconds>
//
// It reports every count that is 0 or the target (fibWatchTargetEnv), and
// with AIRD_BENCH_TIMELINE the count every 500 ms (or the duration it
// gives).

const (
	fibWatchEnv       = "AIRD_BENCH_FIBWATCH" // the table, in the watcher process
	fibWatchTargetEnv = "AIRD_BENCH_FIBWATCH_N"
)

// TestBenchFIBWatcher is the watcher process (see above); it runs until
// its stdin closes.
func TestBenchFIBWatcher(t *testing.T) {
	if os.Getenv(fibWatchEnv) == "" {
		t.Skip("helper process of the learned-routes benchmark")
	}
	table, err := strconv.Atoi(os.Getenv(fibWatchEnv))
	if err != nil {
		t.Fatal(err)
	}
	target, err := strconv.Atoi(os.Getenv(fibWatchTargetEnv))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ch := make(chan netlink.RouteUpdate, 4096)
	errs := make(chan error, 1)
	err = netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{
		ReceiveBufferSize:      256 << 20,
		ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	report := func(n int) {
		mu.Lock()
		fmt.Fprintf(out, "FIBWATCH count %d %d\n", n, time.Now().UnixNano())
		out.Flush()
		mu.Unlock()
	}
	fmt.Fprintln(out, "FIBWATCH ready")
	out.Flush()
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	in := map[netip.Prefix]bool{}
	timeline := os.Getenv("AIRD_BENCH_TIMELINE") != ""
	period := 500 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv("AIRD_BENCH_TIMELINE")); err == nil && d > 0 {
		period = d
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-stdinClosed:
			close(done)
			return
		case err := <-errs:
			fmt.Fprintf(os.Stdout, "FIBWATCH error %v\n", err)
			close(done)
			return
		case <-tick.C:
			if timeline {
				report(len(in))
			}
		case u := <-ch:
			if u.Table != table || u.Dst == nil || u.Dst.IP.To4() != nil {
				continue
			}
			p, ok := prefixOf(u.Dst, netlink.FAMILY_V6)
			if !ok {
				continue
			}
			before := len(in)
			switch u.Type {
			case unix.RTM_NEWROUTE:
				in[p] = true
			case unix.RTM_DELROUTE:
				delete(in, p)
			}
			if n := len(in); n != before && (n == 0 || n == target) {
				report(n)
			}
		}
	}
}

// fibWatch is the benchmark's view of the watcher process.
type fibWatch struct {
	cmd   *exec.Cmd
	stdin io.Closer
	mu    sync.Mutex
	count int       // the last count reported
	at    time.Time // when the watcher saw it
	err   error
	// changed is signalled on every report.
	changed chan struct{}
	exited  chan struct{}
}

// newFIBWatch starts the watcher for table, reporting counts 0 and n.
func newFIBWatch(t *testing.T, table, n int) *fibWatch {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestBenchFIBWatcher$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), fibWatchEnv+"="+strconv.Itoa(table), fibWatchTargetEnv+"="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &fibWatch{cmd: cmd, stdin: stdin, changed: make(chan struct{}, 1), exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(w.exited)
		defer cancel()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || f[0] != "FIBWATCH" {
				continue
			}
			w.mu.Lock()
			switch {
			case f[1] == "ready":
				close(ready)
			case f[1] == "count" && len(f) == 4:
				c, _ := strconv.Atoi(f[2])
				ns, _ := strconv.ParseInt(f[3], 10, 64)
				w.count, w.at = c, time.Unix(0, ns)
			case f[1] == "error":
				w.err = fmt.Errorf("route events: %s (events lost: the count is wrong)", strings.Join(f[2:], " "))
			}
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
		w.mu.Lock()
		if w.err == nil {
			w.err = fmt.Errorf("FIB watcher exited: %v", cmd.Wait())
		}
		w.mu.Unlock()
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}()
	select {
	case <-ready:
	case <-w.exited:
		t.Fatalf("FIB watcher: %v", w.err)
	case <-time.After(30 * time.Second):
		w.close()
		t.Fatal("FIB watcher not ready within 30 s")
	}
	return w
}

func (w *fibWatch) close() {
	w.stdin.Close()
	<-w.exited
}

// last returns the last count reported.
func (w *fibWatch) last() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count
}

// waitCount returns when the table first held n prefixes (the watcher's
// clock).
func (w *fibWatch) waitCount(t *testing.T, n int, diag func() string) time.Time {
	deadline := time.After(benchTimeout)
	for {
		w.mu.Lock()
		c, at, err := w.count, w.at, w.err
		w.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if c == n && !at.IsZero() {
			return at
		}
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("FIB table: last count %d, want %d, not within %s\n%s", c, n, benchTimeout, diag())
		}
	}
}
