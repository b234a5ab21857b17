package integration

// The Debian package, end to end: built with packaging/deb.sh (make deb),
// installed with dpkg into a booted Debian (systemd-nspawn), started with
// its shipped default configuration, used by a member of group aird and
// refused to a non-member, upgraded, removed and purged.
//
//	AIRD_TEST_PRIVILEGED=1 go test ./integration/ -run TestDebPackage -count=1 -v

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

func buildDeb(t *testing.T) string {
	t.Helper()
	root := testutil.ModuleRoot(t)
	cmd := exec.Command("bash", "packaging/deb.sh", t.TempDir())
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("packaging/deb.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(string(out))
	t.Logf("built %s", deb)
	return deb
}

func TestDebPackage(t *testing.T) {
	testutil.NspawnRequire(t)
	deb := buildDeb(t)
	goVersion, err := exec.Command("bash", filepath.Join(testutil.ModuleRoot(t), "packaging", "version.sh"), "go").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("man-pages-render", func(t *testing.T) { debManPages(t, deb) })
	c := testutil.NspawnBoot(t, func(root string) {
		testutil.NspawnInstallFile(t, root, deb, "/root/aird.deb", 0o644)
	})
	t.Cleanup(func() {
		if t.Failed() {
			st, _ := c.Exec("systemctl", "status", "--no-pager", "-l", "aird")
			t.Logf("--- systemctl status aird ---\n%s", st)
			t.Logf("--- journalctl -u aird ---\n%s", c.Journal("aird"))
		}
	})
	ok := t.Run("install", func(t *testing.T) {
		if out, err := c.Exec("dpkg", "-i", "/root/aird.deb"); err != nil {
			t.Fatalf("dpkg -i: %v\n%s", err, out)
		}
		// Installing starts and enables nothing.
		if out, _ := c.Exec("systemctl", "is-active", "aird"); strings.TrimSpace(out) != "inactive" {
			t.Errorf("systemctl is-active aird = %q right after dpkg -i, want inactive", strings.TrimSpace(out))
		}
		if out, _ := c.Exec("systemctl", "is-enabled", "aird"); strings.TrimSpace(out) != "disabled" {
			t.Errorf("systemctl is-enabled aird = %q, want disabled", strings.TrimSpace(out))
		}
		for path, want := range map[string]string{
			"/usr/bin/aird":                                    "755 root:root",
			"/usr/bin/airctl":                                  "755 root:root",
			"/usr/lib/systemd/system/aird.service":             "644 root:root",
			"/etc/aird":                                        "750 root:root",
			"/etc/aird/aird.toml":                              "640 root:root",
			"/usr/share/man/man8/aird.8.gz":                    "644 root:root",
			"/usr/share/man/man8/airctl.8.gz":                  "644 root:root",
			"/usr/share/man/man8/airctl-status.8.gz":           "644 root:root",
			"/usr/share/man/man5/aird.toml.5.gz":               "644 root:root",
			"/usr/share/bash-completion/completions/airctl":    "644 root:root",
			"/usr/share/zsh/vendor-completions/_airctl":        "644 root:root",
			"/usr/share/fish/vendor_completions.d/airctl.fish": "644 root:root",
		} {
			out, err := c.Exec("stat", "-c", "%a %U:%G", path)
			if got := strings.TrimSpace(out); err != nil || got != want {
				t.Errorf("%s: %q (%v), want %q", path, got, err, want)
			}
		}
		if out, _ := c.Exec("dpkg-query", "--control-show", "aird", "conffiles"); !strings.Contains(out, "/etc/aird/aird.toml") {
			t.Errorf("aird.toml is not a conffile: %q", out)
		}
		if out, err := c.Exec("getent", "group", "aird"); err != nil || !strings.HasPrefix(out, "aird:") {
			t.Errorf("group aird: %v %q", err, out)
		}
		want := "aird " + strings.TrimSpace(string(goVersion))
		if out, _ := c.Exec("aird", "--version"); !strings.HasPrefix(out, want) {
			t.Errorf("aird --version = %q, want %q…", out, want)
		}
		if out, _ := c.Exec("airctl", "version"); !strings.HasPrefix(out, "airctl "+strings.TrimSpace(string(goVersion))) {
			t.Errorf("airctl version = %q", out)
		}
	})
	if !ok {
		return
	}

	var mainPID string
	ok = t.Run("start-with-default-config", func(t *testing.T) {
		if out, err := c.Exec("systemctl", "start", "aird"); err != nil {
			t.Fatalf("systemctl start aird with the shipped configuration: %v\n%s", err, out)
		}
		st := sdAirctlStatus(t, c)
		if st.State != "running" || st.Config.File != "/etc/aird/aird.toml" {
			t.Errorf("airctl status: state %q file %q", st.State, st.Config.File)
		}
		// No uplinks: nothing is attached to the container's interface.
		if out := c.MustExec("ip", "-d", "link", "show", "host0"); strings.Contains(out, "xdp") {
			t.Errorf("the default configuration attached XDP:\n%s", out)
		}
		mainPID = sdShow(t, c, "aird", "MainPID")["MainPID"]
	})
	if !ok {
		return
	}

	t.Run("socket-group", func(t *testing.T) {
		c.MustExec("useradd", "--no-create-home", "--groups", "aird", "op")
		c.MustExec("useradd", "--no-create-home", "other")
		if out, err := c.Exec("runuser", "-u", "op", "--", "airctl", "status"); err != nil || !strings.Contains(out, "running") {
			t.Errorf("airctl status as a member of group aird: %v\n%s", err, out)
		}
		out, err := c.Exec("runuser", "-u", "other", "--", "airctl", "status")
		if testutil.NspawnExitCode(err) != 1 || !strings.Contains(out, "permission denied: run as root or as a member of group aird") {
			t.Errorf("airctl status as a non-member: exit %d\n%s", testutil.NspawnExitCode(err), out)
		}
		// api.socket-group = "aird" works under the shipped unit.
		conf := c.MustExec("cat", "/etc/aird/aird.toml")
		conf = strings.Replace(conf, "[api]\n", "[api]\nsocket-group = \"aird\"\n", 1)
		c.WriteFile("/etc/aird/aird.toml", []byte(conf), 0o640)
		if out, err := c.Exec("systemctl", "restart", "aird"); err != nil {
			t.Fatalf("restart with api.socket-group = \"aird\": %v\n%s", err, out)
		}
		if out := strings.TrimSpace(c.MustExec("stat", "-c", "%a %U:%G", "/run/aird/aird.sock")); out != "660 root:aird" {
			t.Errorf("socket with api.socket-group = \"aird\": %q, want 660 root:aird", out)
		}
		if out, err := c.Exec("runuser", "-u", "op", "--", "airctl", "status"); err != nil {
			t.Errorf("airctl status as a member of group aird: %v\n%s", err, out)
		}
		mainPID = sdShow(t, c, "aird", "MainPID")["MainPID"]
	})

	t.Run("upgrade-restarts", func(t *testing.T) {
		if out, err := c.Exec("dpkg", "-i", "/root/aird.deb"); err != nil {
			t.Fatalf("dpkg -i (upgrade): %v\n%s", err, out)
		}
		p := sdShow(t, c, "aird", "ActiveState", "MainPID")
		if p["ActiveState"] != "active" || p["MainPID"] == mainPID {
			t.Errorf("after an upgrade: %v, want active with a new MainPID (was %s)", p, mainPID)
		}
		// The edited conffile is kept.
		if out := c.MustExec("cat", "/etc/aird/aird.toml"); !strings.Contains(out, "socket-group = \"aird\"") {
			t.Errorf("the upgrade replaced the edited /etc/aird/aird.toml")
		}
	})

	t.Run("remove", func(t *testing.T) {
		if out, err := c.Exec("dpkg", "-r", "aird"); err != nil {
			t.Fatalf("dpkg -r: %v\n%s", err, out)
		}
		if out, _ := c.Exec("systemctl", "is-active", "aird"); strings.TrimSpace(out) == "active" {
			t.Errorf("aird still active after dpkg -r")
		}
		for _, gone := range []string{"/usr/bin/aird", "/usr/bin/airctl", "/usr/lib/systemd/system/aird.service", "/sys/fs/bpf/aird"} {
			if _, err := c.Exec("test", "-e", gone); err == nil {
				t.Errorf("%s left after dpkg -r", gone)
			}
		}
		// Debian policy: remove keeps the configuration and the state.
		for _, kept := range []string{"/etc/aird/aird.toml", "/var/lib/aird"} {
			if _, err := c.Exec("test", "-e", kept); err != nil {
				t.Errorf("%s removed by dpkg -r; only a purge may remove it", kept)
			}
		}
		if out, _ := c.Exec("dpkg-query", "-W", "-f", "${Status}", "aird"); out != "deinstall ok config-files" {
			t.Errorf("package status after dpkg -r: %q", out)
		}
	})

	t.Run("purge", func(t *testing.T) {
		if out, err := c.Exec("dpkg", "-P", "aird"); err != nil {
			t.Fatalf("dpkg -P: %v\n%s", err, out)
		}
		for _, gone := range []string{"/etc/aird", "/var/lib/aird"} {
			if _, err := c.Exec("test", "-e", gone); err == nil {
				t.Errorf("%s left after dpkg -P", gone)
			}
		}
	})
}

// debManPages formats every man page of the package with man(1), which
// must not warn (groff: unknown macros, tables too wide, bad escapes).
func debManPages(t *testing.T, deb string) {
	testutil.RequireCommand(t, "man")
	dir := t.TempDir()
	testutil.Run(t, "dpkg-deb", "-x", deb, dir)
	pages, _ := filepath.Glob(filepath.Join(dir, "usr/share/man/man*/*.gz"))
	if len(pages) < 3 {
		t.Fatalf("%d man pages in the package", len(pages))
	}
	for _, p := range pages {
		var stderr strings.Builder
		cmd := exec.Command("man", "--warnings", "-l", p)
		cmd.Env = append(os.Environ(), "MANWIDTH=80")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || !strings.Contains(string(out), "NAME") {
			t.Errorf("man -l %s: %v\n%s", filepath.Base(p), err, stderr.String())
		}
	}
}
