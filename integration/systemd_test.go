package integration

// End-to-end tests of systemd/aird.service under a real systemd, booted in a
// systemd-nspawn container (internal/testutil/nspawn.go).
//
//	AIRD_TEST_PRIVILEGED=1 go test ./integration/ -run Systemd -count=1 -v -timeout 30m
//
// Needs root, debootstrap, systemd-nspawn (Debian: systemd-container) and
// nsenter (util-linux), and network access to a Debian mirror the first time.
// Runtime: the first run builds the rootfs cache with debootstrap (about a
// minute from a fast mirror, several minutes from a slow one); afterwards each
// test boots a container in 1-10 seconds and the whole run takes 15-60
// seconds, depending on the machine's load.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// The five capabilities aird.service grants (and bounds the process to).
var sdAirdCaps = map[string]uint{
	"CAP_NET_BIND_SERVICE": 10,
	"CAP_NET_ADMIN":        12,
	"CAP_NET_RAW":          13,
	"CAP_PERFMON":          38,
	"CAP_BPF":              39,
}

func sdCapMask() uint64 {
	var m uint64
	for _, bit := range sdAirdCaps {
		m |= 1 << bit
	}
	return m
}

type sdAirdStatus struct {
	State  string `json:"state"`
	Config struct {
		File       string `json:"file"`
		Generation int    `json:"generation"`
		Digest     string `json:"digest"`
	} `json:"config"`
	LastReload *struct {
		Time  string `json:"time"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"last_reload"`
	LogLevel string `json:"log_level"`
}

func sdDigest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sdTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "nspawn", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// showProps runs systemctl show -p ... and returns the properties.
func sdShow(t *testing.T, c *testutil.NspawnContainer, unit string, props ...string) map[string]string {
	t.Helper()
	out := c.MustExec("systemctl", "show", "-p", strings.Join(props, ","), unit)
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func sdAirctlStatus(t *testing.T, c *testutil.NspawnContainer) sdAirdStatus {
	t.Helper()
	out, err := c.Exec("airctl", "status", "-o", "json")
	if err != nil {
		t.Fatalf("airctl status -o json: %v\n%s", err, out)
	}
	var st sdAirdStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("airctl status -o json: %v\n%s", err, out)
	}
	t.Logf("airctl status: %s", strings.TrimSpace(out))
	return st
}

// procStatus reads /proc/PID/status in the container.
func sdProcStatus(t *testing.T, c *testutil.NspawnContainer, pid string) map[string]string {
	t.Helper()
	out := c.MustExec("cat", "/proc/"+pid+"/status")
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestSystemdUnit boots systemd in a container and drives aird through
// systemd/aird.service as installed: start (READY=1), capabilities, a good
// reload, a rejected reload, stop, aird --cleanup, the watchdog, and a start
// and restart over a pinned data plane.
func TestSystemdUnit(t *testing.T) {
	testutil.NspawnRequire(t)
	aird, airctl := testutil.Binaries(t)
	unit := filepath.Join(testutil.ModuleRoot(t), "systemd", "aird.service")
	cfg := sdTestdata(t, "aird.toml")
	good := sdTestdata(t, "aird-reload-good.toml")
	bad := sdTestdata(t, "aird-reload-bad.toml")
	const cfgPath = "/etc/aird/aird.toml"

	c := testutil.NspawnBoot(t, func(root string) {
		testutil.NspawnInstallFile(t, root, aird, "/usr/bin/aird", 0o755)
		testutil.NspawnInstallFile(t, root, airctl, "/usr/bin/airctl", 0o755)
		testutil.NspawnInstallUnit(t, root, unit)
		testutil.NspawnWriteFile(t, root, cfgPath, cfg, 0o640)
	})
	// Registered after testutil.NspawnBoot's cleanups, so it runs while the
	// container is still up.
	t.Cleanup(func() {
		if t.Failed() {
			st, _ := c.Exec("systemctl", "status", "--no-pager", "-l", "aird")
			t.Logf("--- systemctl status aird ---\n%s", st)
			t.Logf("--- journalctl -u aird ---\n%s", c.Journal("aird"))
		}
	})

	var mainPID string
	ok := t.Run("start", func(t *testing.T) {
		// Type=notify: start returns once aird sent READY=1 (or fails
		// after TimeoutStartSec).
		if out, err := c.Exec("systemctl", "start", "aird"); err != nil {
			t.Fatalf("systemctl start aird: %v\n%s", err, out)
		}
		if out, _ := c.Exec("systemctl", "is-active", "aird"); strings.TrimSpace(out) != "active" {
			t.Fatalf("systemctl is-active aird = %q, want active", strings.TrimSpace(out))
		}
		p := sdShow(t, c, "aird", "ActiveState", "SubState", "StatusText", "MainPID", "Type", "NotifyAccess", "WatchdogUSec")
		t.Logf("systemctl show aird: %v", p)
		if p["ActiveState"] != "active" || p["SubState"] != "running" {
			t.Errorf("ActiveState/SubState = %s/%s, want active/running", p["ActiveState"], p["SubState"])
		}
		if p["StatusText"] == "" {
			t.Errorf("StatusText is empty: aird sent no STATUS= with READY=1")
		}
		mainPID = p["MainPID"]
		if mainPID == "" || mainPID == "0" {
			t.Fatalf("MainPID = %q", mainPID)
		}

		// The bounding set is exactly the five capabilities; so are the
		// effective and ambient sets of a root process under them.
		ps := sdProcStatus(t, c, mainPID)
		want := fmt.Sprintf("%016x", sdCapMask())
		t.Logf("aird (PID %s in the container): CapInh %s CapPrm %s CapEff %s CapBnd %s CapAmb %s NoNewPrivs %s Seccomp %s",
			mainPID, ps["CapInh"], ps["CapPrm"], ps["CapEff"], ps["CapBnd"], ps["CapAmb"], ps["NoNewPrivs"], ps["Seccomp"])
		for _, k := range []string{"CapBnd", "CapEff", "CapPrm", "CapAmb"} {
			if ps[k] != want {
				t.Errorf("%s = %s, want %s (CAP_BPF CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE CAP_PERFMON)", k, ps[k], want)
			}
		}
		if ps["NoNewPrivs"] != "1" {
			t.Errorf("NoNewPrivs = %s, want 1", ps["NoNewPrivs"])
		}
		if ps["Seccomp"] != "2" {
			t.Errorf("Seccomp = %s, want 2 (filter)", ps["Seccomp"])
		}

		// datapath.forwarding = "enable": the hardened unit lets aird
		// write the uplink's sysctls (and nothing else under /proc/sys).
		for _, k := range []string{"ipv4/conf/host0/forwarding", "ipv6/conf/host0/forwarding"} {
			if out, err := c.Exec("cat", "/proc/sys/net/"+k); err != nil || strings.TrimSpace(out) != "1" {
				t.Errorf("%s = %q (%v), want 1: aird did not enable forwarding on its uplink", k, strings.TrimSpace(out), err)
			}
		}

		st := sdAirctlStatus(t, c)
		if st.State != "running" {
			t.Errorf("state = %q, want running", st.State)
		}
		if st.Config.Generation != 1 {
			t.Errorf("config.generation = %d, want 1", st.Config.Generation)
		}
		if st.Config.Digest != sdDigest(cfg) {
			t.Errorf("config.digest = %s, want %s", st.Config.Digest, sdDigest(cfg))
		}
		if st.Config.File != cfgPath {
			t.Errorf("config.file = %q, want %s", st.Config.File, cfgPath)
		}
		if st.LogLevel != "info" {
			t.Errorf("log_level = %q, want info", st.LogLevel)
		}

		// UMask=0007: the API socket is not accessible to others;
		// Group=aird: it and its directory belong to group aird.
		out := c.MustExec("stat", "-c", "%a %U:%G %F", "/run/aird/aird.sock")
		t.Logf("/run/aird/aird.sock: %s", strings.TrimSpace(out))
		if mode, err := strconv.ParseUint(strings.Fields(out)[0], 8, 32); err != nil || mode&0o007 != 0 {
			t.Errorf("API socket mode %s: others must have no access", strings.Fields(out)[0])
		}
		if f := strings.Fields(out); len(f) < 2 || f[1] != "root:aird" {
			t.Errorf("API socket owned by %v, want root:aird", f)
		}
		if dir := strings.TrimSpace(c.MustExec("stat", "-c", "%a %U:%G", "/run/aird")); dir != "750 root:aird" {
			t.Errorf("/run/aird is %q, want 750 root:aird", dir)
		}
	})
	if !ok {
		return
	}

	ok = t.Run("reload-good", func(t *testing.T) {
		c.WriteFile(cfgPath, good, 0o640)
		if out, err := c.Exec("systemctl", "reload", "aird"); err != nil {
			t.Fatalf("systemctl reload aird (good file): %v\n%s", err, out)
		}
		p := sdShow(t, c, "aird", "ActiveState", "SubState", "MainPID")
		if p["ActiveState"] != "active" || p["SubState"] != "running" || p["MainPID"] != mainPID {
			t.Errorf("after reload: %v, want active/running with MainPID %s", p, mainPID)
		}
		st := sdAirctlStatus(t, c)
		if st.Config.Generation != 2 {
			t.Errorf("config.generation = %d, want 2", st.Config.Generation)
		}
		if st.Config.Digest != sdDigest(good) {
			t.Errorf("config.digest = %s, want %s (the new file)", st.Config.Digest, sdDigest(good))
		}
		if st.LogLevel != "debug" {
			t.Errorf("log_level = %q, want debug", st.LogLevel)
		}
		if st.LastReload == nil || !st.LastReload.OK {
			t.Errorf("last_reload = %+v, want ok", st.LastReload)
		}
	})
	if !ok {
		return
	}

	ok = t.Run("reload-bad", func(t *testing.T) {
		badLine := 1 + strings.Count(string(bad[:strings.Index(string(bad), "Level =")]), "\n")
		c.WriteFile(cfgPath, bad, 0o640)
		out, err := c.Exec("systemctl", "reload", "aird")
		t.Logf("systemctl reload aird (bad file): exit %d\n%s", testutil.NspawnExitCode(err), out)
		if err == nil {
			t.Errorf("systemctl reload aird exited 0 on a rejected file; want non-zero")
		}
		if out, _ := c.Exec("systemctl", "is-active", "aird"); strings.TrimSpace(out) != "active" {
			t.Errorf("systemctl is-active aird = %q after a rejected reload, want active", strings.TrimSpace(out))
		}
		p := sdShow(t, c, "aird", "ActiveState", "SubState", "MainPID", "NRestarts")
		if p["MainPID"] != mainPID || p["NRestarts"] != "0" {
			t.Errorf("after rejected reload: %v, want MainPID %s and no restarts", p, mainPID)
		}
		st := sdAirctlStatus(t, c)
		if st.Config.Generation != 2 {
			t.Errorf("config.generation = %d, want still 2", st.Config.Generation)
		}
		if st.Config.Digest != sdDigest(good) {
			t.Errorf("config.digest = %s, want still %s (the previous file)", st.Config.Digest, sdDigest(good))
		}
		if st.LogLevel != "debug" {
			t.Errorf("log_level = %q, want still debug", st.LogLevel)
		}
		lineRE := regexp.MustCompile(fmt.Sprintf(`(:%d(:|\b))|((?i)line %d\b)`, badLine, badLine))
		switch {
		case st.LastReload == nil:
			t.Errorf("last_reload missing")
		case st.LastReload.OK:
			t.Errorf("last_reload.ok = true after a rejected file")
		case !lineRE.MatchString(st.LastReload.Error):
			t.Errorf("last_reload.error = %q, want it to name line %d", st.LastReload.Error, badLine)
		}
		// What an operator sees: airctl's rejection lands in the unit's journal.
		if j := c.Journal("aird"); !lineRE.MatchString(j) {
			t.Errorf("journalctl -u aird does not show the rejected line %d:\n%s", badLine, j)
		}
		// ... at priority err: aird's own entries and airctl's lines.
		errs, _ := c.Exec("journalctl", "-u", "aird", "-p", "err", "--no-pager", "-o", "cat")
		t.Logf("journalctl -u aird -p err:\n%s", errs)
		if !strings.Contains(errs, "reload rejected") || !lineRE.MatchString(errs) || !strings.Contains(errs, "airctl: reload failed") {
			t.Errorf("journalctl -u aird -p err lacks aird's rejection, the line or airctl's error:\n%s", errs)
		}
		if strings.Contains(errs, "msg=reloaded") || strings.Contains(errs, "aird starting") {
			t.Errorf("journalctl -p err shows info entries:\n%s", errs)
		}
		sdCheckJournalFields(t, c, badLine)
	})
	if !ok {
		return
	}

	t.Run("stop", func(t *testing.T) {
		if out, err := c.Exec("systemctl", "stop", "aird"); err != nil {
			t.Fatalf("systemctl stop aird: %v\n%s", err, out)
		}
		out, _ := c.Exec("systemctl", "is-active", "aird")
		if s := strings.TrimSpace(out); s != "inactive" {
			t.Errorf("systemctl is-active aird = %q after stop, want inactive", s)
		}
		p := sdShow(t, c, "aird", "ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
		t.Logf("after stop: %v", p)
		if p["Result"] != "success" {
			t.Errorf("Result = %q after stop, want success", p["Result"])
		}
		pins, _ := c.Exec("find", "/sys/fs/bpf")
		t.Logf("bpffs after stop (the data plane stays pinned on purpose):\n%s", pins)
	})

	t.Run("cleanup", func(t *testing.T) {
		if out, err := c.Exec("aird", "--cleanup", "--config", cfgPath); err != nil {
			t.Fatalf("aird --cleanup: %v\n%s", err, out)
		}
		out, _ := c.Exec("find", "/sys/fs/bpf/aird", "-mindepth", "1")
		if s := strings.TrimSpace(out); s != "" && !strings.Contains(s, "No such file") {
			t.Errorf("pins left after aird --cleanup:\n%s", s)
		}
	})

	// The file on disk is still the rejected one; every start below needs
	// a good one.
	c.WriteFile(cfgPath, good, 0o640)

	t.Run("watchdog", func(t *testing.T) {
		// A 2s watchdog: if aird did not send WATCHDOG=1, systemd would
		// abort and restart it well within the 7s we wait. A fresh start
		// (no pins), so this checks the watchdog only.
		dropIn := "/etc/systemd/system/aird.service.d/50-test-watchdog.conf"
		c.WriteFile(dropIn, []byte("[Service]\nWatchdogSec=2s\n"), 0o644)
		c.MustExec("systemctl", "daemon-reload")
		defer func() {
			c.MustExec("rm", "-f", dropIn)
			c.MustExec("systemctl", "daemon-reload")
			c.MustExec("systemctl", "stop", "aird")
		}()
		if out, err := c.Exec("systemctl", "start", "aird"); err != nil {
			t.Fatalf("systemctl start aird: %v\n%s", err, out)
		}
		p0 := sdShow(t, c, "aird", "MainPID", "WatchdogUSec", "WatchdogTimestampMonotonic", "NRestarts")
		if p0["WatchdogUSec"] != "2s" {
			t.Fatalf("WatchdogUSec = %q, want 2s", p0["WatchdogUSec"])
		}
		time.Sleep(7 * time.Second)
		p1 := sdShow(t, c, "aird", "ActiveState", "MainPID", "WatchdogTimestampMonotonic", "NRestarts", "Result")
		t.Logf("watchdog: at start %v, 7s later %v", p0, p1)
		if p1["ActiveState"] != "active" || p1["MainPID"] != p0["MainPID"] || p1["NRestarts"] != p0["NRestarts"] {
			t.Errorf("aird did not survive a 2s watchdog: at start %v, 7s later %v", p0, p1)
		}
		t0, _ := strconv.ParseUint(p0["WatchdogTimestampMonotonic"], 10, 64)
		t1, _ := strconv.ParseUint(p1["WatchdogTimestampMonotonic"], 10, 64)
		if t1 <= t0 {
			t.Errorf("WatchdogTimestampMonotonic did not advance (%d -> %d): no WATCHDOG=1", t0, t1)
		}
	})

	t.Run("restart-adopts-pins", func(t *testing.T) {
		// The watchdog run stopped aird with its data plane pinned; this
		// start has to adopt the pins, under the unit's capabilities.
		pins, _ := c.Exec("find", "/sys/fs/bpf/aird")
		t.Logf("bpffs before start:\n%s", pins)
		out, err := c.Exec("systemctl", "start", "aird")
		if err == nil {
			p := sdShow(t, c, "aird", "MainPID")
			restarts := strings.Count(c.Journal("aird"), "intent=restart")
			out2, err2 := c.Exec("systemctl", "restart", "aird")
			if err2 == nil {
				if p2 := sdShow(t, c, "aird", "MainPID"); p2["MainPID"] == p["MainPID"] {
					t.Errorf("MainPID unchanged across restart: %v", p2)
				}
				// aird asked systemd which job stopped it: a restart
				// keeps BGP routes, a stop withdraws them.
				if n := strings.Count(c.Journal("aird"), "intent=restart"); n != restarts+1 {
					t.Errorf("systemctl restart: aird logged intent=restart %d times, want %d", n, restarts+1)
				}
			}
			out, err = out+out2, err2
		}
		if err != nil {
			t.Fatalf("starting aird over its pinned data plane failed: %v\n%s", err, out)
		}
		if out, _ := c.Exec("systemctl", "is-active", "aird"); strings.TrimSpace(out) != "active" {
			t.Errorf("systemctl is-active aird = %q, want active", strings.TrimSpace(out))
		}
		st := sdAirctlStatus(t, c)
		if st.State != "running" || st.Config.Generation != 1 || st.Config.Digest != sdDigest(good) {
			t.Errorf("after restart: state %q generation %d digest %s; want running, 1, %s",
				st.State, st.Config.Generation, st.Config.Digest, sdDigest(good))
		}
		stops := strings.Count(c.Journal("aird"), "intent=stop")
		if out, err := c.Exec("systemctl", "stop", "aird"); err != nil {
			t.Errorf("systemctl stop aird: %v\n%s", err, out)
		}
		if n := strings.Count(c.Journal("aird"), "intent=stop"); n != stops+1 {
			t.Errorf("systemctl stop: aird logged intent=stop %d times, want %d", n, stops+1)
		}
		if p := sdShow(t, c, "aird", "Result"); p["Result"] != "success" {
			t.Errorf("Result = %q after stop, want success", p["Result"])
		}
	})
}

// sdCheckJournalFields: aird's journal entries are structured (go-systemd's
// native protocol): the rejected key's error carries PRIORITY=3,
// SYSLOG_IDENTIFIER=aird and the slog attributes as fields.
func sdCheckJournalFields(t *testing.T, c *testutil.NspawnContainer, badLine int) {
	t.Helper()
	out, err := c.Exec("journalctl", "-u", "aird", "-p", "err", "--no-pager", "-o", "json")
	if err != nil {
		t.Fatalf("journalctl -o json: %v\n%s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(l), &e) != nil || e["KEY"] != "log.Level" {
			continue
		}
		if e["PRIORITY"] != "3" || e["SYSLOG_IDENTIFIER"] != "aird" || e["LINE"] != strconv.Itoa(badLine) ||
			e["_TRANSPORT"] != "journal" || e["CODE_FUNC"] == nil {
			t.Errorf("the config error's journal entry: %v", e)
		}
		return
	}
	t.Errorf("no journal entry with KEY=log.Level at priority err:\n%s", out)
}

// TestSystemdSandbox runs integration/testdata/nspawn/probe as a service
// with exactly the sandbox of systemd/aird.service (same [Unit] and [Service]
// lines, only Type/ExecStart and the notify/reload/restart lines changed) and
// checks that every kernel interface aird needs works under it: bpf() and
// bpffs pins, XDP attach (bpf_link in auto/native/generic mode and netlink),
// perf event and ring buffer readers, raw ICMPv6 and packet sockets, TCP
// port 179, rtnetlink, the runtime and state directories. It does not need
// the daemon, so it pins down the unit's capability set and system call
// filter on its own.
func TestSystemdSandbox(t *testing.T) {
	testutil.NspawnRequire(t)
	root := testutil.ModuleRoot(t)
	unitText, err := os.ReadFile(filepath.Join(root, "systemd", "aird.service"))
	if err != nil {
		t.Fatal(err)
	}
	probeUnit := sdProbeUnit(t, string(unitText))

	bin := filepath.Join(t.TempDir(), "aird-probe")
	build := exec.Command("go", "build", "-o", bin, "./integration/testdata/nspawn/probe")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}

	c := testutil.NspawnBoot(t, func(r string) {
		testutil.NspawnInstallFile(t, r, bin, "/usr/bin/aird-probe", 0o755)
		testutil.NspawnWriteFile(t, r, "/etc/systemd/system/aird-probe.service", []byte(probeUnit), 0o644)
		testutil.NspawnAddAirdGroup(t, r)
		testutil.NspawnWriteFile(t, r, "/etc/aird/aird.toml", sdTestdata(t, "aird.toml"), 0o640)
	})
	out, err := c.Exec("systemctl", "start", "aird-probe")
	journal := c.Journal("aird-probe")
	t.Logf("--- journalctl -u aird-probe ---\n%s", journal)
	if err != nil {
		t.Errorf("systemctl start aird-probe: %v\n%s", err, out)
	}
	for _, l := range strings.Split(journal, "\n") {
		if i := strings.Index(l, "FAIL "); i >= 0 {
			t.Errorf("under aird.service's sandbox: %s", l[i:])
		}
	}
	if !strings.Contains(journal, "RESULT OK") {
		t.Errorf("the probe did not finish with RESULT OK")
	}
}

// probeUnitFrom turns aird.service into a oneshot unit running the probe,
// keeping every sandboxing line.
func sdProbeUnit(t *testing.T, unit string) string {
	t.Helper()
	var b strings.Builder
	sawExec := false
	for _, l := range strings.Split(unit, "\n") {
		key, _, _ := strings.Cut(l, "=")
		switch key {
		case "Type":
			l = "Type=oneshot"
		case "ExecStart":
			l = "ExecStart=/usr/bin/aird-probe host0"
			sawExec = true
		case "NotifyAccess", "ExecReload", "Restart", "RestartSec", "WatchdogSec":
			continue
		case "Description":
			l = "Description=aird sandbox probe (aird.service's sandbox)"
		}
		b.WriteString(l + "\n")
	}
	if !sawExec {
		t.Fatalf("no ExecStart= in aird.service")
	}
	return b.String()
}
