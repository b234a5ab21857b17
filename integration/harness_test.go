package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// node is one aird under test: its own network namespace with an uplink
// veth (uplink0) to a peer namespace (eth0), a private pin path, API socket
// and sd_notify socket.
type node struct {
	t                    *testing.T
	ns, peerNS           string
	dir, cfgPath, socket string
	pinPath              string
	aird, airctlBin      string
	cmd                  *exec.Cmd
	exited               chan error
	log                  *testutil.SyncBuffer
	notify               *notifyListener
}

func newNode(t *testing.T) *node {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.RequireCommand(t, "nsenter")
	n := newAirdIn(t, testutil.NewNetns(t, "airdn-"))
	n.peerNS = testutil.NewNetns(t, "airdp-")
	testutil.Run(t, "ip", "link", "add", "uplink0", "netns", n.ns, "type", "veth", "peer", "name", "eth0", "netns", n.peerNS)
	testutil.Run(t, "ip", "link", "add", "uplink1", "netns", n.ns, "type", "veth", "peer", "name", "eth1", "netns", n.peerNS)
	for _, l := range []struct{ ns, dev, v6, v4 string }{
		{n.ns, "uplink0", "fd00:100:1::1/64", "10.100.1.1/24"},
		{n.peerNS, "eth0", "fd00:100:1::2/64", "10.100.1.2/24"},
		{n.ns, "uplink1", "fd00:100:2::1/64", "10.100.2.1/24"},
		{n.peerNS, "eth1", "fd00:100:2::2/64", "10.100.2.2/24"},
	} {
		testutil.Addr(t, l.ns, l.dev, l.v6)
		testutil.Addr(t, l.ns, l.dev, l.v4)
		testutil.Run(t, "ip", "-n", l.ns, "link", "set", l.dev, "up")
	}
	return n
}

// newAirdIn prepares an aird for namespace ns (which the caller wires up):
// its own directory, API socket, pin path and sd_notify socket; it is
// killed and its data plane removed when the test ends.
func newAirdIn(t *testing.T, ns string) *node {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.RequireCommand(t, "nsenter")
	aird, airctl := testutil.Binaries(t)
	n := &node{t: t, aird: aird, airctlBin: airctl, log: &testutil.SyncBuffer{}, ns: ns}
	n.dir = t.TempDir()
	n.cfgPath = filepath.Join(n.dir, "aird.toml")
	n.socket = filepath.Join(n.dir, "run", "aird.sock")
	n.pinPath = testutil.TempPinPath(t)
	n.notify = listenNotify(t, filepath.Join(n.dir, "notify.sock"))
	t.Cleanup(func() {
		n.kill()
		n.cleanup()
		if t.Failed() {
			t.Logf("aird log:\n%s", n.log.String())
		}
	})
	return n
}

// config returns a valid configuration for this node.
func (n *node) config(logLevel string, uplinks ...string) string {
	q := make([]string, len(uplinks))
	for i, u := range uplinks {
		q[i] = fmt.Sprintf("%q", u)
	}
	return fmt.Sprintf(`[node]
name = "itest"
router-id = "10.255.0.1"
underlay = ["fd00:100:1::1"]
uplinks = [%s]

[datapath]
pin-path = %q

[api]
socket = %q

[metrics]
listen = "127.0.0.1:9469"

[log]
level = %q
`, strings.Join(q, ", "), n.pinPath, n.socket, logLevel)
}

func (n *node) writeConfig(body string) {
	n.t.Helper()
	if err := os.WriteFile(n.cfgPath, []byte(body), 0o600); err != nil {
		n.t.Fatal(err)
	}
}

// start runs aird in the node's namespace (nsenter switches only the network
// namespace, so the host's bpffs stays visible) and waits for READY=1.
func (n *node) start() {
	n.t.Helper()
	n.startWithin(20 * time.Second)
}

// startWithin is start with a longer wait for READY=1 (a large
// configuration).
func (n *node) startWithin(d time.Duration) {
	n.t.Helper()
	if err := n.startErr(d); err != nil {
		n.t.Fatal(err)
	}
}

// startErr starts aird and waits up to d for READY=1; an aird that exits
// first ends the wait at once, with its exit status and last lines.
func (n *node) startErr(d time.Duration) error {
	n.launch("nsenter", "--net=/run/netns/"+n.ns, n.aird, "--config", n.cfgPath)
	_, err := n.notify.wait("READY=1", d)
	return err
}

// launch starts aird with the command line given (a wrapper and aird's
// path first): its output goes to n.log, sd_notify to n.notify, and it
// keeps its state (the IPAM store) in the test's directory, as systemd's
// StateDirectory= would give it one.
func (n *node) launch(name string, args ...string) {
	n.t.Helper()
	n.cmd = exec.Command(name, args...)
	n.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+n.notify.path, "STATE_DIRECTORY="+n.stateDir())
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start aird: %v", err)
	}
	n.exited = make(chan error, 1)
	gone := make(chan struct{})
	var exitErr error
	n.notify.watch(gone, func() string {
		status := "exit status 0"
		if exitErr != nil {
			status = exitErr.Error()
		}
		return fmt.Sprintf("aird exited (%s); the last lines of its output:\n%s", status, lastLines(n.log.String(), 20))
	})
	go func(c *exec.Cmd) {
		exitErr = c.Wait()
		close(gone)
		n.exited <- exitErr
	}(n.cmd)
}

// lastLines returns the last k lines of s.
func lastLines(s string, k int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-k):], "\n")
}

// stop sends SIGTERM (outside systemd: a stop that withdraws the BGP
// routes), expects STOPPING=1 and a clean exit.
func (n *node) stop() {
	n.t.Helper()
	n.stopWith(syscall.SIGTERM)
}

// stopForRestart sends SIGUSR2 (outside systemd: exit for a restart that
// keeps routes and probe routing), expects STOPPING=1 and a clean exit.
func (n *node) stopForRestart() {
	n.t.Helper()
	n.stopWith(syscall.SIGUSR2)
}

func (n *node) stopWith(sig syscall.Signal) {
	n.t.Helper()
	_ = n.cmd.Process.Signal(sig)
	n.notify.waitFor(n.t, "STOPPING=1", 10*time.Second)
	select {
	case err := <-n.exited:
		if err != nil {
			n.t.Fatalf("aird exited with %v after %v\n%s", err, sig, n.log.String())
		}
	case <-time.After(15 * time.Second):
		n.t.Fatalf("aird did not exit within 15s of %v", sig)
	}
	n.cmd = nil
}

// cleanup runs aird --cleanup for the node (its pins, routes and
// endpoints, in its namespace and state directory).
func (n *node) cleanup() (string, error) {
	c := exec.Command("nsenter", "--net=/run/netns/"+n.ns, n.aird, "--cleanup", "--config", n.cfgPath)
	c.Env = append(os.Environ(), "STATE_DIRECTORY="+n.stateDir())
	out, err := c.CombinedOutput()
	return string(out), err
}

// stateDir is the node's $STATE_DIRECTORY.
func (n *node) stateDir() string { return filepath.Join(n.dir, "state") }

func (n *node) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		<-n.exited
		n.cmd = nil
	}
}

// airctl runs airctl against the node's socket. A command that takes over
// two minutes (a daemon that hangs) fails the test.
func (n *node) airctl(args ...string) (stdout, stderr string, code int) {
	n.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, n.airctlBin, append([]string{"--socket", n.socket}, args...)...)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		n.t.Fatalf("airctl %v did not finish within 2 minutes", args)
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		n.t.Fatalf("run airctl: %v", err)
	}
	return out.String(), errb.String(), code
}

func (n *node) status() api.Status {
	n.t.Helper()
	out, errs, code := n.airctl("status", "-o", "json")
	if code != 0 {
		n.t.Fatalf("airctl status exited %d: %s", code, errs)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		n.t.Fatalf("airctl status -o json: %v\n%s", err, out)
	}
	return st
}

// runningConfig returns the daemon's running configuration as JSON text.
func (n *node) runningConfig() string {
	n.t.Helper()
	out, errs, code := n.airctl("config", "show", "-o", "json")
	if code != 0 {
		n.t.Fatalf("airctl config show -o json exited %d: %s", code, errs)
	}
	return out
}

// metrics fetches /metrics from inside the node's namespace.
func (n *node) metrics() string {
	n.t.Helper()
	var body string
	testutil.InNetns(n.t, n.ns, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", "127.0.0.1:9469")
		if err != nil {
			n.t.Fatalf("dial metrics: %v", err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(c)
		body = buf.String()
	})
	return body
}

// attachedXDP reports whether the kernel shows an XDP program on dev inside
// the node namespace.
func (n *node) attachedXDP(dev string) bool {
	n.t.Helper()
	out := testutil.Run(n.t, "ip", "-n", n.ns, "-d", "link", "show", dev)
	return strings.Contains(out, "prog/xdp")
}

// notifyListener plays systemd's side of sd_notify.
type notifyListener struct {
	path string
	mu   sync.Mutex
	msgs []string
	seen int
	wake chan struct{}
	// gone is closed when the process that sends to the socket exits
	// (watch); exit then says how it ended.
	gone  <-chan struct{}
	exit  func() string
	syncs int
}

func listenNotify(t *testing.T, path string) *notifyListener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("notify socket: %v", err)
	}
	l := &notifyListener{path: path, wake: make(chan struct{}, 1)}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.msgs = append(l.msgs, string(buf[:k]))
			l.mu.Unlock()
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// watch makes every wait end as soon as gone is closed (the process
// sending to the socket exited), with exit's description, instead of at
// its timeout.
func (l *notifyListener) watch(gone <-chan struct{}, exit func() string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone, l.exit = gone, exit
}

// waitFor returns the first message not yet consumed that contains want,
// consuming it and everything before it; it fails the test at timeout or
// when the process exits first.
func (l *notifyListener) waitFor(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	m, err := l.wait(want, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wait is waitFor returning an error.
func (l *notifyListener) wait(want string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	l.mu.Lock()
	gone, exit := l.gone, l.exit
	l.mu.Unlock()
	for {
		if m, ok := l.take(want); ok {
			return m, nil
		}
		select {
		case <-l.wake:
		case <-gone:
			// What the process sent before it exited may still be queued
			// on the socket: a marker sent now is read after all of it.
			if err := l.sync(); err != nil {
				return "", fmt.Errorf("no sd_notify message with %q: %s (and the notify socket: %w)", want, exit(), err)
			}
			if m, ok := l.take(want); ok {
				return m, nil
			}
			return "", fmt.Errorf("no sd_notify message with %q: %s", want, exit())
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			return "", fmt.Errorf("no sd_notify message with %q within %s; got %q", want, timeout, l.msgs)
		}
	}
}

// take consumes the first message not yet consumed that contains want.
func (l *notifyListener) take(want string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := l.seen; i < len(l.msgs); i++ {
		if strings.Contains(l.msgs[i], want) {
			l.seen = i + 1
			return l.msgs[i], true
		}
	}
	return "", false
}

// sync sends a marker to the socket and waits (up to 10 s) until the
// reader has read it: every message queued before it has been read too.
func (l *notifyListener) sync() error {
	l.mu.Lock()
	l.syncs++
	marker := fmt.Sprintf("X-HARNESS-SYNC=%d", l.syncs)
	l.mu.Unlock()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: l.path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte(marker)); err != nil {
		return err
	}
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		found := slices.Contains(l.msgs[l.seen:], marker)
		l.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-l.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return errors.New("the marker sent to it was not read within 10s")
		}
	}
}
