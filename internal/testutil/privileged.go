package testutil

import (
	"os"
	"testing"
)

// PrivilegedEnv is the environment variable that turns a skipped privileged
// test into a failure. CI sets it, so a privileged test can never pass by
// silently not running.
const PrivilegedEnv = "AIRD_TEST_PRIVILEGED"

// RequirePrivileged skips t with a loud message when the test does not run as
// root, unless AIRD_TEST_PRIVILEGED=1, in which case it fails t instead.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	Unavailable(t, "needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)")
}

// Unavailable reports that a prerequisite of a privileged test is missing:
// it skips, or fails when AIRD_TEST_PRIVILEGED=1.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(PrivilegedEnv) == "1" {
		t.Fatalf("PRIVILEGED TEST CANNOT RUN (%s=1): %s", PrivilegedEnv, why)
	}
	t.Skipf("SKIPPING PRIVILEGED TEST: %s (set %s=1 to make this a failure)", why, PrivilegedEnv)
}

// RequireCommand makes the test unavailable when name is not on PATH.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := lookPath(name)
	if err != nil {
		Unavailable(t, "command "+name+" not found: "+err.Error())
	}
	return p
}
