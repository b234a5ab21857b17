package testutil

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Nobody is the unprivileged user tests run clients as.
const Nobody = 65534

// RunAs runs bin as another user (a real setuid child: the kernel sees its
// uid, gid and groups), from a copy placed where that user may execute it,
// with env added to the environment. It returns the combined output and
// the exit code; a run over a minute fails the test.
func RunAs(t testing.TB, cred *syscall.Credential, env []string, bin string, args ...string) (string, int) {
	t.Helper()
	RequirePrivileged(t)
	dir, err := os.MkdirTemp("", "aird-runas-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	copyPath := filepath.Join(dir, filepath.Base(bin))
	if err := copyFile(bin, copyPath); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, copyPath} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, copyPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %v as uid %d did not finish within a minute", bin, args, cred.Uid)
	case err != nil && !errors.As(err, &ee):
		t.Fatalf("run %s as uid %d: %v", bin, cred.Uid, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// OpenPathTo lets every user reach path: it adds search permission for
// the group and others to each directory from path's parent up to (not
// including) /tmp or /.
func OpenPathTo(t testing.TB, path string) {
	t.Helper()
	for d := filepath.Dir(path); d != "/" && d != os.TempDir() && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
