package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

func TestExitCodes(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.sock")
	good := filepath.Join("..", "..", "configs", "aird.toml")
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[log]\nlevel = \"loud\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"config", "check", good}, exitOK, ""},
		{[]string{"bgp"}, exitOK, ""}, // a noun alone prints its help
		{[]string{"version", "--socket", none}, exitOK, ""},
		{[]string{"config", "check", bad}, exitFailed, ""},
		{[]string{"no-such-command"}, exitUsage, `unknown command "no-such-command"`},
		{[]string{"status", "--no-such-flag"}, exitUsage, "unknown flag: --no-such-flag"},
		{[]string{"status", "extra"}, exitUsage, `unknown command "extra"`},
		{[]string{"config", "check"}, exitUsage, "accepts 1 arg(s)"},
		{[]string{"-o", "yaml", "status"}, exitUsage, "invalid --output"},
		{[]string{"--socket", none, "lb", "drain", "web", "not-an-address"}, exitUsage, "is not an address"},
		{[]string{"--socket", none, "status"}, exitUnreachable, "aird is not running"},
		{[]string{"--socket", none, "reload"}, exitUnreachable, "aird is not running"},
		{[]string{"--socket", none, "config", "show"}, exitUnreachable, "aird is not running"},
		{[]string{"--socket", none, "lb", "services"}, exitUnreachable, "aird is not running"},
	} {
		_, errs, code := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("airctl %s: exit %d, want %d; stderr %q, want it to contain %q", strings.Join(tc.args, " "), code, tc.code, errs, tc.msg)
		}
		if code == exitUsage && !strings.Contains(errs, "--help' for usage") {
			t.Errorf("airctl %s: a usage error without the pointer to --help: %q", strings.Join(tc.args, " "), errs)
		}
	}
}

// TestPermissionDeniedNamesTheGroup runs airctl as an unprivileged user
// against a socket that only root and a group may use, the way aird.service
// lays out /run/aird (root:aird 0750) and the socket (root:aird 0660).
func TestPermissionDeniedNamesTheGroup(t *testing.T) {
	testutil.RequirePrivileged(t)
	_, airctl := testutil.Binaries(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		testutil.Unavailable(t, "no user nobody: "+err.Error())
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	grp, err := user.LookupGroup("adm") // any group nobody is not in
	if err != nil {
		testutil.Unavailable(t, "no group adm: "+err.Error())
	}
	ggid, _ := strconv.Atoi(grp.Gid)

	// Not t.TempDir(): its parent is closed to other users.
	base, err := os.MkdirTemp("", "airctl-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "airctl")
	testutil.Run(t, "cp", airctl, bin)
	run := filepath.Join(base, "run")
	sock := filepath.Join(run, "aird.sock")
	if err := os.Mkdir(run, 0o750); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { _ = http.Serve(ln, http.NotFoundHandler()) }()
	for _, p := range []string{run, sock} {
		if err := os.Chown(p, 0, ggid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o660); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"--socket", sock}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("running airctl as nobody: %v", err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	want := "permission denied: run as root or as a member of group " + grp.Name
	// The directory is closed to nobody (as /run/aird is).
	if out, code := asNobody("status"); code != exitFailed || !strings.Contains(out, want) {
		t.Errorf("directory closed: exit %d, output %q; want %d and %q", code, out, exitFailed, want)
	}
	// The directory is open, the socket is not.
	if err := os.Chmod(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, code := asNobody("status"); code != exitFailed || !strings.Contains(out, want) {
		t.Errorf("socket closed: exit %d, output %q; want %d and %q", code, out, exitFailed, want)
	}
	// Only root may use it.
	if err := os.Chown(sock, 0, 0); err != nil {
		t.Fatal(err)
	}
	if out, code := asNobody("status"); code != exitFailed || !strings.Contains(out, "permission denied: run as root (no group may use") {
		t.Errorf("root only: exit %d, output %q", code, out)
	}
}

func TestLinePrefixer(t *testing.T) {
	var b strings.Builder
	p := &linePrefixer{w: &b, prefix: []byte("<3>"), start: true}
	for _, s := range []string{"airctl: reload failed: x\n/etc/a", "ird.toml:3:1: log.Level\n", "\n"} {
		if n, err := p.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if want := "<3>airctl: reload failed: x\n<3>/etc/aird.toml:3:1: log.Level\n<3>\n"; b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}
