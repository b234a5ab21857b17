package integration

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// TestReloadRefusesHostileFiles puts each file of issue 11 (deep nesting,
// 10 MB, /dev/zero, a FIFO, a directory) at the configuration path of a
// running aird and reloads, through airctl and through SIGHUP: each reload
// fails at once naming the file, aird keeps serving the same configuration,
// its peak RSS stays within hostileReloadRSS of what it was, and a good
// file reloads afterwards.
func TestReloadRefusesHostileFiles(t *testing.T) {
	const hostileReloadRSS = 32 << 20
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.start()
	good := n.runningConfig()
	digest := n.status().Config.Digest
	hwm := peakRSS(t, n.cmd.Process.Pid)

	for i, h := range testutil.HostileConfigs() {
		t.Run(h.Name, func(t *testing.T) {
			if err := os.RemoveAll(n.cfgPath); err != nil {
				t.Fatal(err)
			}
			h.Make(t, n.cfgPath)
			if i%2 == 0 {
				_, errs, code := n.airctl("reload")
				if code != 1 || !strings.Contains(errs, n.cfgPath+":") || !strings.Contains(errs, h.Want) {
					t.Fatalf("airctl reload: exit %d, want 1 with %q:\n%.500s", code, h.Want, errs)
				}
			} else if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			n.notify.waitFor(t, "RELOADING=1", 5*time.Second)
			n.notify.waitFor(t, "READY=1", 10*time.Second)
			select {
			case err := <-n.exited:
				t.Fatalf("aird exited: %v", err)
			default:
			}
			st := n.status()
			if st.State != "running" || st.Config.Generation != 1 || st.Config.Digest != digest {
				t.Fatalf("state %q generation %d digest %.12s: the running config moved", st.State, st.Config.Generation, st.Config.Digest)
			}
			if st.LastReload == nil || st.LastReload.OK || !strings.Contains(st.LastReload.Error, h.Want) {
				t.Fatalf("airctl status does not say why the reload failed (want %q): %+v", h.Want, st.LastReload)
			}
			if now := n.runningConfig(); now != good {
				t.Fatal("running config changed by a rejected reload")
			}
			if got := peakRSS(t, n.cmd.Process.Pid); got > hwm+hostileReloadRSS {
				t.Fatalf("peak RSS grew from %d to %d bytes", hwm, got)
			}
		})
	}
	t.Logf("peak RSS %d MiB at start, %d MiB after the hostile reloads", hwm>>20, peakRSS(t, n.cmd.Process.Pid)>>20)

	if err := os.RemoveAll(n.cfgPath); err != nil {
		t.Fatal(err)
	}
	n.writeConfig(n.config("debug", "uplink0"))
	if out, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("a good reload after the hostile ones: exit %d: %s%s", code, out, errs)
	}
	if st := n.status(); st.Config.Generation != 2 || st.LogLevel != "debug" || !n.attachedXDP("uplink0") {
		t.Fatalf("after a good reload: generation %d, log level %q, XDP on uplink0 %v", st.Config.Generation, st.LogLevel, n.attachedXDP("uplink0"))
	}
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
