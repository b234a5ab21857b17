package testutil

// Booting a real systemd in a systemd-nspawn container, for tests that
// exercise systemd/aird.service end to end.
//
// The container's root file system is a debootstrap'ed Debian bookworm
// (minbase + systemd, dbus, iproute2), built once and cached at
// /var/cache/aird-test/rootfs-bookworm (override the directory with
// AIRD_TEST_CACHE, the mirror with AIRD_DEBIAN_MIRROR). Each container runs on
// a throwaway overlay (or, failing that, a cp -a copy) of the cache, so the
// cache is never written to. The cache holds a marker file with the recipe
// string below; changing the recipe rebuilds it.
//
// The container gets (NspawnBoot; NspawnBootWith changes the first two):
//   - its own network namespace with a veth pair (--network-veth): host0
//     inside, ve-NAME outside; or an existing namespace (NetNS);
//   - a private bpffs instance bind-mounted on /sys/fs/bpf, so pins never
//     reach the host's bpffs and disappear when the test unmounts it; or
//     the host's own (HostBPFFS);
//   - CAP_BPF and CAP_PERFMON on top of systemd-nspawn's default capability
//     set (CAP_NET_ADMIN comes with the private network), and the bpf and
//     perf_event_open system calls, which systemd-nspawn's own seccomp filter
//     otherwise rejects with EPERM even for a fully privileged container.
//
// Commands run inside with nsenter on the container's PID 1 (machinectl
// cannot be used: the container is not registered with machined).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	nspawnSuite   = "bookworm"
	nspawnInclude = "systemd,systemd-sysv,dbus,iproute2"
	// nspawnRecipe is stored in the cached rootfs. Change it whenever the way
	// the rootfs is built changes: a cache with another recipe is rebuilt.
	nspawnRecipe = "aird-nspawn-rootfs/2 debootstrap --variant=minbase --include=" +
		nspawnInclude + " " + nspawnSuite
	nspawnMarker = ".aird-rootfs-recipe"

	nspawnDefaultMirror = "http://deb.debian.org/debian"
	nspawnBuildTimeout  = 20 * time.Minute
	nspawnBootTimeout   = 90 * time.Second
	nspawnExecTimeout   = 90 * time.Second
)

// NspawnRequire makes the test unavailable (skip, or fail under
// AIRD_TEST_PRIVILEGED=1) when it cannot boot a container here.
func NspawnRequire(t *testing.T) {
	t.Helper()
	RequirePrivileged(t)
	for _, c := range []string{"debootstrap", "systemd-nspawn", "nsenter"} {
		RequireCommand(t, c)
	}
}

func nspawnCacheDir() string {
	if d := os.Getenv("AIRD_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/aird-test"
}

// nspawnMirror is the Debian mirror the host's apt uses for the suite, so the
// test downloads from wherever this machine is allowed to.
func nspawnMirror() string {
	if m := os.Getenv("AIRD_DEBIAN_MIRROR"); m != "" {
		return m
	}
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		more, _ := filepath.Glob(pat)
		files = append(files, more...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var m string
		if strings.HasSuffix(f, ".sources") {
			m = nspawnDeb822Mirror(string(b), nspawnSuite)
		} else {
			m = nspawnOneLineMirror(string(b), nspawnSuite)
		}
		if m != "" {
			return m
		}
	}
	return nspawnDefaultMirror
}

func nspawnUsableMirror(uri string) bool {
	for _, p := range []string{"http://", "https://", "file:/", "ftp://"} {
		if strings.HasPrefix(uri, p) {
			return true
		}
	}
	return false
}

// oneLineMirror reads "deb [options] URI suite components" lines.
func nspawnOneLineMirror(text, suite string) string {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && f[1] == suite && nspawnUsableMirror(f[0]) {
			return strings.TrimSuffix(f[0], "/")
		}
	}
	return ""
}

// deb822Mirror reads Types:/URIs:/Suites: stanzas.
func nspawnDeb822Mirror(text, suite string) string {
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(k, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if strings.EqualFold(fields["enabled"], "no") ||
			!nspawnContains(strings.Fields(fields["types"]), "deb") ||
			!nspawnContains(strings.Fields(fields["suites"]), suite) {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			if nspawnUsableMirror(uri) {
				return strings.TrimSuffix(uri, "/")
			}
		}
	}
	return ""
}

func nspawnContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nspawnRootfs returns the cached rootfs, building it first when it is
// missing or was built from another recipe. It holds a shared lock on the
// cache until the test ends, so a concurrent rebuild (which takes the lock
// exclusively) cannot swap it away under a running container.
func nspawnRootfs(t *testing.T) string {
	t.Helper()
	dir := nspawnCacheDir()
	final := filepath.Join(dir, "rootfs-"+nspawnSuite)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("rootfs cache: %v", err)
	}
	lock, err := os.OpenFile(final+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("rootfs cache lock: %v", err)
	}
	t.Cleanup(func() { lock.Close() })
	current := func() bool {
		b, err := os.ReadFile(filepath.Join(final, nspawnMarker))
		return err == nil && strings.TrimSpace(string(b)) == nspawnRecipe
	}
	flock := func(how int) {
		if err := unix.Flock(int(lock.Fd()), how); err != nil {
			t.Fatalf("rootfs cache lock: %v", err)
		}
	}
	flock(unix.LOCK_SH)
	if current() {
		t.Logf("using cached container rootfs %s", final)
		return final
	}
	flock(unix.LOCK_EX)
	if !current() { // nobody else built it meanwhile
		nspawnBuildRootfs(t, dir, final)
	}
	flock(unix.LOCK_SH)
	return final
}

func nspawnBuildRootfs(t *testing.T, dir, final string) {
	t.Helper()
	stale, _ := filepath.Glob(final + ".tmp-*")
	old, _ := filepath.Glob(final + ".old-*")
	for _, s := range append(stale, old...) {
		if err := nspawnRemoveTree(s); err != nil {
			t.Logf("leaving stale %s: %v", s, err)
		}
	}
	tmp, err := os.MkdirTemp(dir, filepath.Base(final)+".tmp-")
	if err != nil {
		t.Fatalf("rootfs cache: %v", err)
	}
	mirror := nspawnMirror()
	t.Logf("building container rootfs cache %s from %s (once; about a minute with a fast mirror, up to ~10 minutes with a slow one)", final, mirror)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), nspawnBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+nspawnInclude, nspawnSuite, tmp, mirror)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(tmp, "debootstrap", "debootstrap.log"))
		if rerr := nspawnRemoveTree(tmp); rerr != nil {
			t.Logf("leaving %s: %v", tmp, rerr)
		}
		t.Fatalf("debootstrap %s from %s: %v\n%s\n--- debootstrap.log (tail) ---\n%s", nspawnSuite, mirror, err, nspawnTail(out, 40), nspawnTail(log, 60))
	}
	// MkdirTemp made it 0700; the container's / must be traversable.
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatalf("rootfs cache: %v", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, nspawnMarker), []byte(nspawnRecipe+"\n"), 0o644); err != nil {
		t.Fatalf("rootfs cache: %v", err)
	}
	// Swap the new tree in atomically; an old one (other recipe) goes away.
	var prev string
	if _, err := os.Stat(final); err == nil {
		prev = final + ".old-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if err := os.Rename(final, prev); err != nil {
			t.Fatalf("rootfs cache: %v", err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		t.Fatalf("rootfs cache: %v", err)
	}
	if prev != "" {
		if err := nspawnRemoveTree(prev); err != nil {
			t.Logf("leaving %s: %v", prev, err)
		}
	}
	t.Logf("built container rootfs cache in %s", time.Since(start).Round(time.Second))
}

// nspawnMountsUnder lists the mount points at or below dir, deepest first.
func nspawnMountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := nspawnUnescape(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts
}

func nspawnUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// nspawnRemoveTree unmounts whatever is mounted below dir (an interrupted
// debootstrap leaves /proc and /sys mounted in its target) and removes it.
// It refuses to remove a tree that still has mounts in it.
func nspawnRemoveTree(dir string) error {
	for _, m := range nspawnMountsUnder(dir) {
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
	if left := nspawnMountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %v", left)
	}
	return os.RemoveAll(dir)
}

// NspawnContainer is a booted container.
type NspawnContainer struct {
	t      *testing.T
	Name   string // machine name; the host's veth end is ve-Name
	Root   string // the container's / as seen from the host
	BPFFS  string // the container's /sys/fs/bpf as seen from the host
	Leader int    // the container's PID 1, as a host PID
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// NspawnBoot boots the cached rootfs in a container and waits until its
// systemd reports running or degraded. install is called with the
// container's root directory (on the host) before boot. Everything (the
// container, the veth pair, mounts, pins, temp dirs) is torn down when the
// test ends, pass or fail.
func NspawnBoot(t *testing.T, install func(root string)) *NspawnContainer {
	t.Helper()
	return NspawnBootWith(t, NspawnOptions{Install: install})
}

// NspawnOptions change how NspawnBootWith boots the container.
type NspawnOptions struct {
	// Install is called with the container's root directory (on the
	// host) before boot.
	Install func(root string)
	// NetNS runs the container in this existing network namespace (a
	// path such as /run/netns/NAME) instead of a new one with a veth pair.
	NetNS string
	// HostBPFFS bind-mounts the host's /sys/fs/bpf instead of a private
	// bpffs: pins are shared with the host (and with processes that ran
	// before the container), so the caller removes what gets pinned.
	HostBPFFS bool
	// Binds are host directories bind-mounted read-write at the same path
	// in the container.
	Binds []string
}

// NspawnBootWith is NspawnBoot with options.
func NspawnBootWith(t *testing.T, o NspawnOptions) *NspawnContainer {
	t.Helper()
	install := o.Install
	NspawnRequire(t)
	rootfs := nspawnRootfs(t)

	dir, err := os.MkdirTemp("", "aird-nspawn-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nspawnRemoveTree(dir); err != nil {
			t.Errorf("leaving %s: %v", dir, err)
		}
	})
	c := &NspawnContainer{
		t:      t,
		Name:   UniqueName("airdsd"),
		Root:   filepath.Join(dir, "root"),
		BPFFS:  filepath.Join(dir, "bpffs"),
		log:    filepath.Join(dir, "nspawn.log"),
		exited: make(chan struct{}),
	}

	// A throwaway copy of the cache: overlay when the kernel allows it.
	for _, d := range []string{"upper", "work", "root", "bpffs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", rootfs, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", c.Root, "overlay", 0, opts); err == nil {
		t.Cleanup(func() { nspawnUnmount(t, c.Root) })
	} else {
		t.Logf("overlay mount failed (%v); copying the rootfs instead", err)
		Run(t, "cp", "-a", rootfs+"/.", c.Root)
	}

	// systemd-nspawn keeps per-machine state under /run/systemd/nspawn; give
	// it a private tmpfs so nothing is left on the host.
	if err := os.MkdirAll("/run/systemd/nspawn", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", "/run/systemd/nspawn", "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on /run/systemd/nspawn: %v", err)
	}
	t.Cleanup(func() { nspawnUnmount(t, "/run/systemd/nspawn") })

	// A private bpffs instance: pins made in the container live here only,
	// and are gone once it is unmounted.
	if o.HostBPFFS {
		c.BPFFS = "/sys/fs/bpf"
	} else {
		if err := unix.Mount("bpf", c.BPFFS, "bpf", 0, "mode=0700"); err != nil {
			t.Fatalf("mount bpffs: %v", err)
		}
		t.Cleanup(func() { nspawnUnmount(t, c.BPFFS) })
	}

	if install != nil {
		install(c.Root)
	}

	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := []string{
		"--register=no", "--keep-unit", "--boot",
		"--directory=" + c.Root,
		"--machine=" + c.Name,
		"--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN",
		"--system-call-filter=bpf perf_event_open",
		"--bind=" + c.BPFFS + ":/sys/fs/bpf",
		"--console=read-only",
		"--link-journal=no",
		"--setenv=SYSTEMD_COLORS=0",
	}
	if o.NetNS != "" {
		args = append(args, "--network-namespace-path="+o.NetNS)
	} else {
		args = append(args, "--network-veth")
	}
	for _, b := range o.Binds {
		args = append(args, "--bind="+b)
	}
	c.cmd = exec.Command("systemd-nspawn", args...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// If the test binary dies without running cleanups, the container is
	// still shut down (systemd-nspawn turns SIGTERM into a clean halt).
	// The parent death signal follows the thread that forked, not the
	// process: systemd-nspawn is started from a thread locked for as long
	// as it runs, or the container halts when the Go runtime ends that
	// thread (after a goroutine that switched network namespaces exits).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	t.Logf("systemd-nspawn %s", strings.Join(args, " "))
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := c.cmd.Start()
		started <- err
		if err == nil {
			_ = c.cmd.Wait()
			close(c.exited)
		}
	}()
	if err := <-started; err != nil {
		t.Fatalf("systemd-nspawn: %v", err)
	}
	t.Cleanup(c.shutdown)

	start := time.Now()
	c.Leader = c.findLeader()
	if err := c.waitRunning(); err != nil {
		t.Fatalf("container did not boot: %v", err)
	}
	t.Logf("container %s booted in %s (PID 1 is host PID %d)", c.Name, time.Since(start).Round(10*time.Millisecond), c.Leader)
	if o.NetNS == "" {
		// Carrier on host0, so an uplink looks like an uplink.
		_ = exec.Command("ip", "link", "set", "ve-"+c.Name, "up").Run()
		c.MustExec("ip", "link", "set", "host0", "up")
	}
	return c
}

func nspawnUnmount(t *testing.T, path string) {
	if err := unix.Unmount(path, 0); err != nil {
		if err2 := unix.Unmount(path, unix.MNT_DETACH); err2 != nil {
			t.Errorf("unmount %s: %v", path, err2)
		}
	}
}

// findLeader waits for the container's PID 1: a descendant of
// systemd-nspawn whose PID in its own namespace is 1 and which has exec'ed
// systemd.
func (c *NspawnContainer) findLeader() int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			c.t.Fatalf("systemd-nspawn exited early:\n%s", c.Log())
		default:
		}
		if pid := nspawnFindLeader(c.cmd.Process.Pid); pid > 0 {
			return pid
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("no container PID 1 below systemd-nspawn (PID %d) after 30s:\n%s", c.cmd.Process.Pid, c.Log())
	return 0
}

func nspawnFindLeader(nspawnPID int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		var nspid []string
		ppid := 0
		name := ""
		for _, l := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(l, ":")
			switch k {
			case "NSpid":
				nspid = strings.Fields(v)
			case "PPid":
				ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			case "Name":
				name = strings.TrimSpace(v)
			}
		}
		if len(nspid) != 2 || nspid[1] != "1" || name != "systemd" {
			continue
		}
		for p, hops := ppid, 0; p > 1 && hops < 8; hops++ {
			if p == nspawnPID {
				return pid
			}
			p = nspawnPPid(p)
		}
	}
	return 0
}

func nspawnPPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...; comm may contain spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

func (c *NspawnContainer) waitRunning() error {
	deadline := time.Now().Add(nspawnBootTimeout)
	state := ""
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("systemd-nspawn exited:\n%s", c.Log())
		default:
		}
		out, _ := c.ExecTimeout(10*time.Second, "systemctl", "is-system-running")
		state = strings.TrimSpace(out)
		switch state {
		case "running":
			return nil
		case "degraded":
			failed, _ := c.Exec("systemctl", "--failed", "--no-legend", "--plain")
			c.t.Logf("container is degraded (not a problem for these tests); failed units:\n%s", failed)
			return nil
		case "maintenance", "stopping":
			return fmt.Errorf("systemctl is-system-running: %s\n%s", state, c.Log())
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("systemctl is-system-running still %q after %s\n%s", state, nspawnBootTimeout, c.Log())
}

// shutdown halts the container (SIGTERM to systemd-nspawn is a clean
// halt), then kills what is left. Runs as a cleanup.
func (c *NspawnContainer) shutdown() {
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(30 * time.Second):
			c.t.Errorf("container %s did not halt within 30s; killing it", c.Name)
			if c.Leader > 0 {
				_ = syscall.Kill(c.Leader, syscall.SIGKILL)
			}
			_ = c.cmd.Process.Kill()
			select {
			case <-c.exited:
			case <-time.After(10 * time.Second):
				c.t.Errorf("systemd-nspawn (PID %d) still running", c.cmd.Process.Pid)
			}
		}
	}
	// The veth pair dies with the container's network namespace; this is
	// belt and braces.
	_ = exec.Command("ip", "link", "del", "ve-"+c.Name).Run()
	if c.t.Failed() {
		c.t.Logf("--- systemd-nspawn output (container %s) ---\n%s", c.Name, c.Log())
	}
}

// Log is systemd-nspawn's output so far (the container's console).
func (c *NspawnContainer) Log() string {
	b, _ := os.ReadFile(c.log)
	return string(nspawnTail(b, 200))
}

// ExecTimeout runs a command in the container (all its namespaces, a clean
// environment) and returns its combined output; err is an *exec.ExitError
// for a non-zero exit.
func (c *NspawnContainer) ExecTimeout(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{
		"--target", strconv.Itoa(c.Leader), "--mount", "--uts", "--ipc", "--net", "--pid", "--",
		"env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "LC_ALL=C.UTF-8",
	}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	return string(out), err
}

// Exec is ExecTimeout with the default timeout.
func (c *NspawnContainer) Exec(args ...string) (string, error) {
	return c.ExecTimeout(nspawnExecTimeout, args...)
}

// MustExec fails the test when the command fails.
func (c *NspawnContainer) MustExec(args ...string) string {
	c.t.Helper()
	out, err := c.Exec(args...)
	if err != nil {
		c.t.Fatalf("in container: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Journal is the journal of one unit in the container.
func (c *NspawnContainer) Journal(unit string) string {
	out, err := c.ExecTimeout(30*time.Second, "journalctl", "-u", unit, "--no-pager", "-o", "short-monotonic", "-n", "400")
	if err != nil {
		return fmt.Sprintf("journalctl -u %s: %v\n%s", unit, err, out)
	}
	return out
}

// WriteFile writes a file into the container's file system atomically
// (temp file and rename, so a daemon never reads half a file).
func (c *NspawnContainer) WriteFile(path string, data []byte, mode os.FileMode) {
	c.t.Helper()
	NspawnWriteFile(c.t, c.Root, path, data, mode)
}

func NspawnWriteFile(t *testing.T, root, path string, data []byte, mode os.FileMode) {
	t.Helper()
	dst := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp-aird-test"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// NspawnInstallFile copies a host file into the container's file system.
func NspawnInstallFile(t *testing.T, root, src, path string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	NspawnWriteFile(t, root, path, data, mode)
}

func NspawnExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func nspawnTail(b []byte, lines int) []byte {
	b = bytes.TrimRight(b, "\n")
	for i, n := len(b)-1, 0; i >= 0; i-- {
		if b[i] == '\n' {
			n++
			if n == lines {
				return b[i+1:]
			}
		}
	}
	return b
}

// NspawnInstallUnit installs the unit file (systemd/aird.service) into
// the container's root as a manual install would, with the group aird its
// Group= names (what the package's sysusers.d file and postinst do).
func NspawnInstallUnit(t *testing.T, root, unit string) {
	t.Helper()
	NspawnInstallFile(t, root, unit, "/etc/systemd/system/aird.service", 0o644)
	NspawnAddAirdGroup(t, root)
}

// NspawnAddAirdGroup creates the group aird in the container's root with
// systemd-sysusers and the package's sysusers.d file.
func NspawnAddAirdGroup(t *testing.T, root string) {
	t.Helper()
	conf := filepath.Join(ModuleRoot(t), "packaging", "deb", "sysusers.conf")
	NspawnInstallFile(t, root, conf, "/usr/lib/sysusers.d/aird.conf", 0o644)
	RequireCommand(t, "systemd-sysusers")
	Run(t, "systemd-sysusers", "--root="+root, "aird.conf")
}
