package testutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// peakRSSLauncherEnv marks a test binary started by RunPeakRSS as the
// launcher of the measured command.
const peakRSSLauncherEnv = "AIRD_TESTUTIL_PEAK_RSS_LAUNCHER"

// RunPeakRSS runs name with args and returns its combined output, exit
// code and peak resident set size in bytes.
//
// A child's ru_maxrss cannot be read from the test process directly: Go
// starts children with vfork (CLONE_VM), and exec records the hiwater RSS
// of the mm it replaces - the test process's - in the child's maxrss. So
// the test binary starts a copy of itself as a launcher (a fresh, small
// process; ServePeakRSSLauncher, called from TestMain, takes that role),
// and the launcher runs the command and reports its ru_maxrss. The figure
// includes the launcher's own footprint at the time (a few MiB).
// The command is killed when ctx ends.
func RunPeakRSS(ctx context.Context, t testing.TB, name string, args ...string) (out string, code int, rss int64) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, self, append([]string{name}, args...)...)
	cmd.Env = append(os.Environ(), peakRSSLauncherEnv+"=1")
	cmd.ExtraFiles = []*os.File{w} // fd 3: the launcher's report
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatalf("start the launcher of %s: %v", name, err)
	}
	report, readErr := io.ReadAll(r)
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), ctx.Err())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run the launcher of %s: %v", name, err)
	}
	var kib int64
	if _, err := fmt.Sscanf(string(report), "%d %d", &code, &kib); readErr != nil || err != nil {
		t.Fatalf("the launcher of %s reported %q (%v, %v); output:\n%.500s", name, report, readErr, err, buf.String())
	}
	return buf.String(), code, kib << 10
}

// ServePeakRSSLauncher makes this test binary RunPeakRSS's launcher when
// it was started as one: it runs the command in its arguments, writes
// "exit-code maxrss-KiB" to fd 3 and exits. Otherwise it returns at once.
// Call it first in TestMain of a package that uses RunPeakRSS.
func ServePeakRSSLauncher() {
	if os.Getenv(peakRSSLauncherEnv) != "1" {
		return
	}
	report := os.NewFile(3, "report")
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return e == peakRSSLauncherEnv+"=1" })
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the launcher
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintf(os.Stderr, "peak RSS launcher: %v\n", err)
		os.Exit(125)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		fmt.Fprintln(os.Stderr, "peak RSS launcher: no rusage")
		os.Exit(125)
	}
	fmt.Fprintf(report, "%d %d\n", cmd.ProcessState.ExitCode(), ru.Maxrss)
	os.Exit(0)
}
