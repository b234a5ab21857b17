package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// Run runs a command and fails the test with its output when it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// UniqueName returns prefix followed by random hex, short enough to be an
// interface or namespace name (at most 15 bytes).
func UniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	n := prefix + hex.EncodeToString(b)
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// NewNetns creates a named network namespace (ip netns add) and deletes it
// when the test ends, even on failure. Loopback is brought up.
func NewNetns(t testing.TB, prefix string) string {
	t.Helper()
	RequirePrivileged(t)
	RequireCommand(t, "ip")
	name := UniqueName(prefix)
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// NetnsExec runs a command inside the namespace and fails the test on error.
func NetnsExec(t testing.TB, ns string, name string, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Veth creates a veth pair with end a in namespace nsA and end b in nsB
// (an empty namespace name means the test's own namespace), both up.
// Deleting a namespace deletes its ends; the cleanup also removes a pair
// left in the root namespace.
func Veth(t testing.TB, a, nsA, b, nsB string) {
	t.Helper()
	Run(t, "ip", "link", "add", a, "type", "veth", "peer", "name", b)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	for _, end := range []struct{ dev, ns string }{{a, nsA}, {b, nsB}} {
		if end.ns != "" {
			Run(t, "ip", "link", "set", end.dev, "netns", end.ns)
			Run(t, "ip", "-n", end.ns, "link", "set", end.dev, "up")
		} else {
			Run(t, "ip", "link", "set", end.dev, "up")
		}
	}
}

// Addr adds an address (CIDR notation) to dev inside ns, with nodad for IPv6
// so the address is usable at once.
func Addr(t testing.TB, ns, dev, cidr string) {
	t.Helper()
	args := []string{"-n", ns, "addr", "add", cidr, "dev", dev}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	Run(t, "ip", args...)
}
