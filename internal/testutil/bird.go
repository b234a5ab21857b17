package testutil

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BIRD is a BIRD 2 daemon (Debian package bird2) running in a network
// namespace with its own control socket, as a switch for tests.
type BIRD struct {
	Socket string // control socket: birdc -s Socket
	Dir    string // config, socket and log
	Proc   *Proc
}

// StartBIRD writes conf and runs bird in the foreground inside ns. It
// waits until the control socket answers; the daemon is killed and its
// directory removed when the test ends.
func StartBIRD(t testing.TB, ns, conf string) *BIRD {
	t.Helper()
	RequireCommand(t, "bird")
	RequireCommand(t, "birdc")
	dir := TempDir(t, "aird-bird-")
	cfg := writeFile(t, dir, "bird.conf", conf)
	b := &BIRD{Socket: filepath.Join(dir, "bird.ctl"), Dir: dir}
	b.Proc = StartProc(t, filepath.Join(dir, "bird.log"), "ip", BIRDArgs(ns, cfg, b.Socket)...)
	if !WaitFor(10*time.Second, func() bool {
		_, err := b.Cmd("show", "status")
		return err == nil || b.Proc.Exited()
	}) || b.Proc.Exited() {
		t.Fatalf("bird in %s did not start:\n%s", ns, b.Proc.Output())
	}
	return b
}

// BIRDArgs are the arguments of `ip` that run BIRD in the foreground inside
// ns with configuration conf and control socket socket.
func BIRDArgs(ns, conf, socket string) []string {
	return []string{"netns", "exec", ns, "bird", "-f", "-c", conf, "-s", socket}
}

// BIRDClient talks to a running BIRD by its control socket only (for a
// process that did not start it).
func BIRDClient(socket string) *BIRD { return &BIRD{Socket: socket} }

// Cmd runs a birdc command and returns its output.
func (b *BIRD) Cmd(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.Socket}, args...)...).CombinedOutput()
	return string(out), err
}

// MustCmd runs a birdc command and fails the test if birdc fails.
func (b *BIRD) MustCmd(t testing.TB, args ...string) string {
	t.Helper()
	out, err := b.Cmd(args...)
	if err != nil {
		t.Fatalf("birdc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
