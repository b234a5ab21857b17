// Package systemd holds aird's systemd unit; this test checks it without
// booting anything. The end-to-end test is integration/systemd_test.go.
package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

// TestUnitVerify runs `systemd-analyze verify` on aird.service. verify
// insists that ExecStart=/ExecReload= binaries exist, so it checks a temporary
// copy whose /usr/bin/aird and /usr/bin/airctl point at freshly built
// binaries; nothing is installed on the host. Warnings (unknown keys, bad
// values) do not change verify's exit status, so any output fails the test.
func TestUnitVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testutil.Unavailable(t, "systemd-analyze not found (Debian: package systemd): "+err.Error())
	}
	aird, airctl := testutil.Binaries(t)
	unit, err := os.ReadFile("aird.service")
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for old, new := range map[string]string{
		"ExecStart=/usr/bin/aird ":   "ExecStart=" + aird + " ",
		"ExecReload=/usr/bin/airctl": "ExecReload=" + airctl,
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("aird.service has no %q", old)
		}
		text = strings.ReplaceAll(text, old, new)
	}
	path := filepath.Join(t.TempDir(), "aird.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", path)
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify aird.service: %v\n%s", err, out)
	}
}

// unitValues parses the unit into key -> values in file order.
func unitValues(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("aird.service")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("aird.service: not key=value: %q", l)
		}
		m[k] = append(m[k], v)
	}
	return m
}

// TestUnitHardening pins down the properties the integration tests proved
// necessary and sufficient, so an edit that breaks them fails fast.
func TestUnitHardening(t *testing.T) {
	v := unitValues(t)
	one := func(k string) string {
		t.Helper()
		if len(v[k]) != 1 {
			t.Errorf("%s= set %d times, want once", k, len(v[k]))
			return ""
		}
		return v[k][0]
	}
	for k, want := range map[string]string{
		"Type":                    "notify",
		"NotifyAccess":            "main",
		"ExecStart":               "/usr/bin/aird --config /etc/aird/aird.toml",
		"ExecReload":              "/usr/bin/airctl reload",
		"Restart":                 "on-failure",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"UMask":                   "0007",
		"Group":                   "aird",
		"SystemCallArchitectures": "native",
		"RestrictAddressFamilies": "AF_UNIX AF_NETLINK AF_INET AF_INET6 AF_PACKET",
		"RuntimeDirectory":        "aird",
		"StateDirectory":          "aird",
		"ConfigurationDirectory":  "aird",
	} {
		if got := one(k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	caps := []string{"CAP_BPF", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_PERFMON"}
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		got := strings.Fields(one(k))
		if strings.Join(got, " ") != strings.Join(caps, " ") {
			t.Errorf("%s=%v, want exactly %v", k, got, caps)
		}
	}
	// ProtectKernelTunables=yes would mount /sys/fs/bpf read-only whatever
	// ReadWritePaths= says.
	if p := v["ProtectKernelTunables"]; len(p) > 0 && p[len(p)-1] != "no" {
		t.Errorf("ProtectKernelTunables=%s makes bpffs read-only: aird could not pin", p[len(p)-1])
	}
	if !strings.Contains(" "+strings.Join(v["ReadWritePaths"], " ")+" ", " /sys/fs/bpf ") {
		t.Errorf("ReadWritePaths= lacks /sys/fs/bpf")
	}
	if _, ok := v["PrivateUsers"]; ok {
		t.Errorf("PrivateUsers= set: capabilities in a user namespace do not grant bpf()")
	}
	// bpf must be allowed by the last filter line that mentions it (a
	// "~@privileged" line removes it again).
	f := v["SystemCallFilter"]
	if len(f) == 0 || strings.HasPrefix(f[0], "~") {
		t.Fatalf("SystemCallFilter= must start with an allow list, got %v", f)
	}
	for _, sc := range []string{"bpf", "perf_event_open"} {
		allowed := false
		for _, line := range f {
			deny := strings.HasPrefix(line, "~")
			for _, w := range strings.Fields(strings.TrimPrefix(line, "~")) {
				if w == sc || (w == "@privileged" && sc == "bpf") || (w == "@debug" && sc == "perf_event_open") {
					allowed = !deny
				}
			}
		}
		if !allowed {
			t.Errorf("SystemCallFilter= %v does not end up allowing %s", f, sc)
		}
	}
}
