package testutil

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FRRDir is where Debian's frr package puts its daemons.
const FRRDir = "/usr/lib/frr"

// FRR is FRR's zebra and bgpd (Debian package frr) running in a network
// namespace as a switch for tests, with their own vty and zserv sockets
// and no vty TCP port.
type FRR struct {
	Dir   string // configs, pid files, sockets, logs
	Zebra *Proc
	BGPd  *Proc
}

// StartFRR writes bgpdConf and runs zebra and bgpd inside ns as user frr.
// It waits for both vty sockets and then gives bgpd time to learn the
// interfaces from zebra (sessions that come up earlier treat link-local
// next hops as withdrawals). Both are killed when the test ends.
func StartFRR(t testing.TB, ns, bgpdConf string) *FRR {
	t.Helper()
	RequireCommand(t, "vtysh")
	for _, d := range []string{"zebra", "bgpd"} {
		if _, err := os.Stat(filepath.Join(FRRDir, d)); err != nil {
			Unavailable(t, "FRR not installed (apt-get install frr): "+err.Error())
		}
	}
	u, err := user.Lookup("frr")
	if err != nil {
		Unavailable(t, "no frr user (apt-get install frr): "+err.Error())
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := TempDir(t, "aird-frr-")
	zconf := writeFile(t, dir, "zebra.conf", "hostname tor\n")
	bconf := writeFile(t, dir, "bgpd.conf", bgpdConf)
	for _, p := range []string{dir, zconf, bconf} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatalf("chown %s: %v", p, err)
		}
	}
	f := &FRR{Dir: dir}
	f.Zebra = StartProc(t, filepath.Join(dir, "zebra.log"), "ip", FRRDaemonArgs(ns, dir, "zebra", zconf)...)
	f.waitSocket(t, "zebra.vty", f.Zebra)
	f.BGPd = StartProc(t, filepath.Join(dir, "bgpd.log"), "ip", FRRDaemonArgs(ns, dir, "bgpd", bconf)...)
	f.waitSocket(t, "bgpd.vty", f.BGPd)
	time.Sleep(2 * time.Second)
	return f
}

// FRRDaemonArgs are the arguments of `ip` that run FRR's daemon (zebra,
// bgpd, bfdd) in the foreground inside ns as user frr, with configuration
// conf and its pid file, zserv socket and vty socket in dir, and no vty TCP
// port. dir must be owned by frr.
func FRRDaemonArgs(ns, dir, daemon, conf string) []string {
	args := []string{"netns", "exec", ns, filepath.Join(FRRDir, daemon),
		"-f", conf, "-i", filepath.Join(dir, daemon+".pid"), "-z", filepath.Join(dir, "zserv.api"),
		"--vty_socket", dir, "-P", "0", "-u", "frr", "-g", "frr"}
	if daemon == "bfdd" {
		args = append(args, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
	}
	return args
}

func (f *FRR) waitSocket(t testing.TB, name string, p *Proc) {
	t.Helper()
	path := filepath.Join(f.Dir, name)
	if !WaitFor(10*time.Second, func() bool {
		_, err := os.Stat(path)
		return err == nil || p.Exited()
	}) || p.Exited() {
		t.Fatalf("FRR %s did not start:\n%s", name, p.Output())
	}
}

// FRRClient talks to a running FRR by its vty socket directory only.
func FRRClient(dir string) *FRR { return &FRR{Dir: dir} }

// Vtysh runs one vtysh command and returns its output.
func (f *FRR) Vtysh(cmd string) (string, error) {
	out, err := exec.Command("vtysh", "--vty_socket", f.Dir, "-c", cmd).CombinedOutput()
	return string(out), err
}

// MustVtysh runs one vtysh command and fails the test if vtysh fails.
func (f *FRR) MustVtysh(t testing.TB, cmd string) string {
	t.Helper()
	out, err := f.Vtysh(cmd)
	if err != nil {
		t.Fatalf("vtysh -c %q: %v\n%s", cmd, err, out)
	}
	return strings.TrimSpace(out)
}
