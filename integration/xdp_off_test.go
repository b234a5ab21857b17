package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// TestXDPOffNeedsCleanup: while aird's data plane is pinned, `ip link set
// DEV xdp off` fails with "Can't replace active BPF XDP link", also after
// aird stopped; aird --cleanup detaches it (docs/operator-guide.md,
// "Detaching the data plane").
func TestXDPOffNeedsCleanup(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.start()
	n.stop()
	out, err := exec.Command("ip", "-n", n.ns, "link", "set", "uplink0", "xdp", "off").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Can't replace active BPF XDP link") {
		t.Fatalf("ip link set uplink0 xdp off with aird's link pinned: %v\n%s", err, out)
	}
	if !n.attachedXDP("uplink0") {
		t.Fatal("the XDP program is gone after the refused xdp off")
	}
	if out, err := n.cleanup(); err != nil {
		t.Fatalf("aird --cleanup: %v\n%s", err, out)
	}
	if n.attachedXDP("uplink0") {
		t.Fatal("aird --cleanup left the XDP program attached")
	}
}
