package daemon

import (
	"context"
	"os"
	"syscall"
	"testing"
)

// Outside systemd a SIGTERM, a SIGINT or the end of Run's context is a
// stop; only SIGUSR2 is a restart.
func TestStopIntentOutsideSystemd(t *testing.T) {
	t.Setenv("INVOCATION_ID", "")
	for _, c := range []struct {
		sig  os.Signal
		want stopIntent
	}{
		{syscall.SIGTERM, intentStop},
		{syscall.SIGINT, intentStop},
		{nil, intentStop},
		{syscall.SIGUSR2, intentRestart},
	} {
		got, why := stopIntentFor(context.Background(), c.sig)
		if got != c.want || why == "" {
			t.Errorf("%v: %s (%q), want %s", c.sig, got, why, c.want)
		}
	}
}

// Under systemd the job decides; when systemd cannot be asked, or has no
// job for the unit (this test process has none), that is a restart,
// whatever the signal.
func TestStopIntentUnderSystemdWithoutJob(t *testing.T) {
	t.Setenv("INVOCATION_ID", "0123456789abcdef")
	if got, why := stopIntentFor(context.Background(), syscall.SIGTERM); got != intentRestart {
		t.Errorf("SIGTERM without a systemd job: %s (%s), want restart", got, why)
	}
}
