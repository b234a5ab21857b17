package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// TestIPNetnsExec starts aird with `ip netns exec`, which gives it a fresh
// /sys without the host's bpffs: aird mounts a bpffs of its own (private to
// that mount namespace), says what that means, attaches, serves the API,
// and on stop says its data plane detaches with it, which it does.
// `aird --cleanup` under ip netns exec explains that it cannot see the
// host's pins.
func TestIPNetnsExec(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.launch("ip", "netns", "exec", n.ns, n.aird, "--config", n.cfgPath)
	n.notify.waitFor(t, "READY=1", 20*time.Second)

	if !strings.Contains(n.log.String(), "mounted a bpf filesystem on /sys/fs/bpf in this process's private mount namespace") {
		t.Errorf("no warning about the private bpffs:\n%s", n.log.String())
	}
	if !n.attachedXDP("uplink0") {
		t.Fatal("uplink0 has no XDP program")
	}
	if st := n.status(); st.State != "running" || len(st.Datapath.Uplinks) != 1 {
		t.Fatalf("airctl status: %+v", st)
	}
	// The pins are in aird's own bpffs, not in the host's.
	if _, err := os.Stat(n.pinPath); !os.IsNotExist(err) {
		t.Errorf("%s exists in the host's bpffs (%v): aird did not pin privately", n.pinPath, err)
	}

	n.stop()
	if !strings.Contains(n.log.String(), "detaches as aird exits") {
		t.Errorf("the stop message does not say the data plane detaches:\n%s", n.log.String())
	}
	if !testutil.WaitFor(5*time.Second, func() bool { return !n.attachedXDP("uplink0") }) {
		t.Errorf("XDP still attached to uplink0 after aird (and its private bpffs) went away")
	}

	out, err := exec.Command("ip", "netns", "exec", n.ns, n.aird, "--cleanup", "--config", n.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nsenter --net=/run/netns/NAME aird --cleanup") {
		t.Errorf("aird --cleanup under ip netns exec: %v\n%s", err, out)
	}
}

// TestStopMessageNamesCleanup: a normal stop leaves the data plane pinned
// and says how to remove it.
func TestStopMessageNamesCleanup(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.start()
	n.stop()
	want := "cleanup=\"aird --cleanup --config " + n.cfgPath + "\""
	if !strings.Contains(n.log.String(), "the XDP data plane stays attached and pinned") || !strings.Contains(n.log.String(), want) {
		t.Errorf("stop message lacks the cleanup command %s:\n%s", want, n.log.String())
	}
	if !n.attachedXDP("uplink0") {
		t.Errorf("uplink0 detached by a stop")
	}
}
