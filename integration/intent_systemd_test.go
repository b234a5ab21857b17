package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGUSR2IgnoredUnderSystemd: under systemd (INVOCATION_ID set) aird
// ignores SIGUSR2 with a warning, and a SIGTERM without a systemd job (or
// with systemd not reachable) is a restart (docs/operator-guide.md, the
// table of how aird ends).
func TestSIGUSR2IgnoredUnderSystemd(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	// aird takes INVOCATION_ID as "started by systemd"; no systemd job
	// stops it (where systemd runs at all), so a SIGTERM is a restart.
	n.launch("env", "INVOCATION_ID=aird-test", "nsenter", "--net=/run/netns/"+n.ns, n.aird, "--config", n.cfgPath)
	n.notify.waitFor(t, "READY=1", 20*time.Second)

	if err := n.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(n.log.String(), "ignoring user defined signal 2 under systemd") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about SIGUSR2 under systemd:\n%s", n.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-n.exited:
		t.Fatalf("aird exited on SIGUSR2 under systemd: %v", err)
	case <-time.After(time.Second):
	}
	if st := n.status(); st.State != "running" {
		t.Fatalf("after SIGUSR2: state %q", st.State)
	}

	n.stopWith(syscall.SIGTERM)
	t.Logf("stop: %s", lineWith(n.log.String(), "aird stopping"))
	if log := n.log.String(); !strings.Contains(log, "intent=restart") {
		t.Fatalf("SIGTERM with systemd unreachable: want intent=restart in the log:\n%s", log)
	}
}

func lineWith(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
