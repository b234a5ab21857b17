package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// TestDaemonLifecycle drives one aird through start, traffic, good reloads,
// a reload that fails while applying, stop, and a restart that adopts the
// pinned data plane.
func TestDaemonLifecycle(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	if got := uplinkSysctls(t, n.ns, "uplink0"); got != "0 0 1" {
		t.Fatalf("a fresh namespace's uplink0 has forwarding v4 v6 and accept_ra %q, want \"0 0 1\"", got)
	}
	n.start()
	// datapath.forwarding = "enable" (the default) turns forwarding on for
	// the uplinks only, keeping RA acceptance.
	if got := uplinkSysctls(t, n.ns, "uplink0"); got != "1 1 2" {
		t.Fatalf("uplink0 forwarding v4 v6 and accept_ra %q after start, want \"1 1 2\"", got)
	}
	if got := uplinkSysctls(t, n.ns, "uplink1"); got != "0 0 1" {
		t.Fatalf("uplink1 (not an uplink yet) sysctls %q, want them untouched", got)
	}

	st := n.status()
	if st.State != "running" || st.Config.Generation != 1 || st.LogLevel != "info" {
		t.Fatalf("after start: state %q generation %d log level %q", st.State, st.Config.Generation, st.LogLevel)
	}
	if len(st.Datapath.Uplinks) != 1 || st.Datapath.Uplinks[0].Name != "uplink0" || !n.attachedXDP("uplink0") {
		t.Fatalf("uplink0 not attached: %+v", st.Datapath.Uplinks)
	}
	if fi, err := os.Stat(n.socket); err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("API socket %s: %v, mode %v (want a 0660 socket)", n.socket, err, fi.Mode())
	}

	before := st.Datapath.Packets["ipv6"].Packets
	testutil.NetnsExec(t, n.peerNS, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "1", "fd00:100:1::1")
	if got := n.status().Datapath.Packets["ipv6"].Packets; got < before+3 {
		t.Fatalf("ipv6 packets %d -> %d after 3 pings: the XDP counters did not move", before, got)
	}

	t.Run("good reload applies only the difference", func(t *testing.T) {
		n.writeConfig(n.config("debug", "uplink0", "uplink1"))
		out, errs, code := n.airctl("reload")
		if code != 0 {
			t.Fatalf("airctl reload exited %d: %s%s", code, out, errs)
		}
		msg := n.notify.waitFor(t, "RELOADING=1", 5*time.Second)
		if !regexp.MustCompile(`MONOTONIC_USEC=\d+`).MatchString(msg) {
			t.Fatalf("RELOADING=1 without MONOTONIC_USEC: %q", msg)
		}
		n.notify.waitFor(t, "READY=1", 5*time.Second)
		st := n.status()
		if st.Config.Generation != 2 || st.LogLevel != "debug" || !st.LastReload.OK {
			t.Fatalf("after reload: generation %d, level %q, last reload %+v", st.Config.Generation, st.LogLevel, st.LastReload)
		}
		if got := strings.Join(st.LastReload.Changed, ","); got != "node,log" {
			t.Fatalf("changed sections = %q, want node,log", got)
		}
		if !n.attachedXDP("uplink1") || len(st.Datapath.Uplinks) != 2 {
			t.Fatalf("uplink1 not attached after reload: %+v", st.Datapath.Uplinks)
		}
		if got := uplinkSysctls(t, n.ns, "uplink1"); got != "1 1 2" {
			t.Fatalf("uplink1 forwarding v4 v6 and accept_ra %q after reload, want \"1 1 2\"", got)
		}
	})

	t.Run("reload failing while applying rolls back", func(t *testing.T) {
		good := n.runningConfig()
		n.writeConfig(n.config("error", "uplink0", "nosuchif0"))
		_, errs, code := n.airctl("reload")
		if code == 0 || !strings.Contains(errs, "nosuchif0") {
			t.Fatalf("reload onto a missing interface: exit %d, stderr %q", code, errs)
		}
		st := n.status()
		if st.Config.Generation != 2 || st.LogLevel != "debug" || st.LastReload.OK {
			t.Fatalf("after failed apply: generation %d, level %q (the log change must be rolled back)", st.Config.Generation, st.LogLevel)
		}
		if !n.attachedXDP("uplink1") {
			t.Fatal("uplink1 detached by a failed reload")
		}
		if now := n.runningConfig(); now != good {
			t.Fatalf("running config changed by a failed reload:\n%s\nwas\n%s", now, good)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := n.metrics()
		for _, want := range []string{
			`aird_build_info{`, `aird_config_reloads_total{result="success"} 1`,
			`aird_config_reloads_total{result="failure"} 1`, `aird_config_last_reload_successful 0`,
			`aird_config_generation 2`, `aird_xdp_packets_total{family="ipv6"}`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})

	t.Run("flow affinity by link kind, configured per uplink", func(t *testing.T) {
		for _, u := range n.status().Datapath.Uplinks {
			if u.FlowAffinity != "any-cpu" || u.FlowAffinityFrom != "link kind: veth" {
				t.Fatalf("veth uplink %s: flow affinity %q from %q, want any-cpu from its kind", u.Name, u.FlowAffinity, u.FlowAffinityFrom)
			}
		}
		n.writeConfig(n.config("debug", "uplink0", "uplink1") + "\n[[datapath.uplink]]\nname = \"uplink1\"\nflow-affinity = \"one-cpu\"\n")
		if out, errs, code := n.airctl("reload"); code != 0 {
			t.Fatalf("airctl reload exited %d: %s%s", code, out, errs)
		}
		st := n.status()
		if got := strings.Join(st.LastReload.Changed, ","); !st.LastReload.OK || got != "datapath" {
			t.Fatalf("reload: %+v, changed %q, want datapath", st.LastReload, got)
		}
		want := map[string]string{"uplink0": "any-cpu from link kind: veth", "uplink1": "one-cpu from configured"}
		for _, u := range st.Datapath.Uplinks {
			if got := u.FlowAffinity + " from " + u.FlowAffinityFrom; got != want[u.Name] {
				t.Errorf("uplink %s: flow affinity %s, want %s", u.Name, got, want[u.Name])
			}
		}
	})

	// Restore a good file, stop, and start again: the pinned links are
	// adopted, never detached in between.
	n.writeConfig(n.config("info", "uplink0", "uplink1"))
	n.stopForRestart()
	if !n.attachedXDP("uplink0") || !n.attachedXDP("uplink1") {
		t.Fatal("stopping aird detached the data plane; it must stay for the restart")
	}
	if _, err := os.Stat(n.socket); !os.IsNotExist(err) {
		t.Fatalf("API socket left behind after stop: %v", err)
	}
	n.start()
	st = n.status()
	for _, u := range st.Datapath.Uplinks {
		if !u.Adopted {
			t.Errorf("uplink %s was re-attached instead of adopted after restart", u.Name)
		}
	}
	if len(st.Datapath.Uplinks) != 2 {
		t.Fatalf("after restart: uplinks %+v", st.Datapath.Uplinks)
	}
	if got := st.Datapath.Packets["ipv6"].Packets; got < before+3 {
		t.Fatalf("counters lost across restart: ipv6 packets %d", got)
	}
	n.stop()
	out := testutil.Run(t, n.aird, "--cleanup", "--config", n.cfgPath)
	if !strings.Contains(out, n.pinPath) || n.attachedXDP("uplink0") {
		t.Fatalf("aird --cleanup did not remove the data plane: %s", out)
	}
	if _, err := os.Stat(n.pinPath); !os.IsNotExist(err) {
		t.Fatalf("pin path %s left after cleanup: %v", n.pinPath, err)
	}
}

// TestReloadRejectsEveryBadConfig reloads a running daemon with each bad file
// of internal/config/testdata/bad, through airctl and through SIGHUP, and
// shows the running configuration unchanged each time, with the error
// naming the file's expected line.
func TestReloadRejectsEveryBadConfig(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testutil.ModuleRoot(t), "internal/config/testdata/bad/*.toml"))
	if len(files) < 20 {
		t.Fatalf("found %d bad config files, want at least 20", len(files))
	}
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.start()
	good := n.runningConfig()
	digest := n.status().Config.Digest

	for i, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			line, key := firstWant(t, f)
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			n.writeConfig(string(data))
			logFrom := len(n.log.String())
			loc := n.cfgPath + ":" + strconv.Itoa(line) + ":"
			if line == 0 { // a missing key has no line of its own
				loc = n.cfgPath + ": "
			}
			if key == "-" { // syntax errors before any key
				key = ""
			}
			if i%2 == 0 {
				_, errs, code := n.airctl("reload")
				if code != 1 || !strings.Contains(errs, loc) || !strings.Contains(errs, key) {
					t.Fatalf("airctl reload: exit %d, want 1 with %q and key %q in:\n%s", code, loc, key, errs)
				}
			} else if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			// Either way systemd hears RELOADING=1 and then READY=1 again:
			// aird keeps serving with the old configuration.
			n.notify.waitFor(t, "RELOADING=1", 5*time.Second)
			n.notify.waitFor(t, "READY=1", 5*time.Second)
			st := n.status()
			if st.State != "running" || st.Config.Generation != 1 || st.Config.Digest != digest {
				t.Fatalf("state %q generation %d digest %.12s: the running config moved", st.State, st.Config.Generation, st.Config.Digest)
			}
			if st.LastReload == nil || st.LastReload.OK || !strings.Contains(st.LastReload.Error, loc) {
				t.Fatalf("airctl status does not say why the reload failed (want %q): %+v", loc, st.LastReload)
			}
			if now := n.runningConfig(); now != good {
				t.Fatal("running config changed by a rejected reload")
			}
			if !strings.Contains(n.log.String()[logFrom:], "line="+strconv.Itoa(line)+" ") {
				t.Fatalf("the log does not name line %d", line)
			}
		})
	}
	if !n.attachedXDP("uplink0") {
		t.Fatal("uplink0 lost its XDP program during rejected reloads")
	}
}

// firstWant reads the first "# want: LINE:COL KEY ..." header of a bad file.
func firstWant(t *testing.T, path string) (int, string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	re := regexp.MustCompile(`^# want: (\d+):\S+ (\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return line, m[2]
		}
	}
	t.Fatalf("%s has no '# want:' line", path)
	return 0, ""
}

// uplinkSysctls returns "v4-forwarding v6-forwarding v6-accept_ra" of dev.
func uplinkSysctls(t *testing.T, ns, dev string) string {
	t.Helper()
	var out []string
	for _, k := range []string{"ipv4.conf." + dev + ".forwarding", "ipv6.conf." + dev + ".forwarding", "ipv6.conf." + dev + ".accept_ra"} {
		out = append(out, strings.TrimSpace(testutil.NetnsExec(t, ns, "sysctl", "-n", "net."+k)))
	}
	return strings.Join(out, " ")
}
