package daemon

import (
	"context"
	"os"
	"syscall"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// stopIntent says why aird is stopping, which decides what it leaves behind
// for the switches: a restart keeps BGP routes (graceful restart, no CEASE),
// a stop withdraws them so the fabric converges at once. The data plane
// stays pinned either way.
type stopIntent string

const (
	intentRestart stopIntent = "restart" // systemctl restart, SIGUSR2 outside systemd: keep everything in place
	intentStop    stopIntent = "stop"    // systemctl stop, SIGTERM/SIGINT outside systemd: withdraw routes
)

// restartSignal asks aird, outside systemd, to exit for a restart that
// keeps its BGP routes (the supervisor starts it again).
const restartSignal = syscall.SIGUSR2

// underSystemd reports whether systemd started this process.
func underSystemd() bool { return os.Getenv("INVOCATION_ID") != "" }

// stopIntentFor says what ending on sig (nil: the Run context ended)
// means. Under systemd the job that stops the unit says it (see
// systemdStopIntent). Outside systemd nobody else can: a SIGTERM or SIGINT
// is a stop, as for any other daemon, so that a container runtime, runit
// or a shell never leaves the switches holding stale routes for the whole
// restart time; a restart that keeps the routes is asked for explicitly
// with restartSignal.
func stopIntentFor(ctx context.Context, sig os.Signal) (stopIntent, string) {
	if underSystemd() {
		return systemdStopIntent(ctx)
	}
	if sig == restartSignal {
		return intentRestart, "not started by systemd: " + sig.String() + " asks for a restart"
	}
	what := "the context ended"
	if sig != nil {
		what = sig.String()
	}
	return intentStop, "not started by systemd: " + what + " is a stop (" + restartSignal.String() + " restarts keeping the routes)"
}

// systemdStopIntent asks systemd, over its private bus, which job is
// stopping this unit: "stop" means stop; "restart" and its variants mean
// restart. When systemd cannot be asked it is a restart, the choice that
// never loses traffic.
func systemdStopIntent(ctx context.Context) (stopIntent, string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := sddbus.NewSystemdConnectionContext(ctx)
	if err != nil {
		return intentRestart, "systemd not reachable: " + err.Error()
	}
	defer conn.Close()
	unit, err := conn.GetUnitNameByPID(ctx, uint32(os.Getpid()))
	if err != nil {
		return intentRestart, "own unit unknown: " + err.Error()
	}
	jobs, err := conn.ListJobsContext(ctx)
	if err != nil {
		return intentRestart, "jobs unknown: " + err.Error()
	}
	for _, j := range jobs {
		if j.Unit != unit {
			continue
		}
		switch j.JobType {
		case "stop":
			return intentStop, "systemd job " + j.JobType + " for " + unit
		default:
			return intentRestart, "systemd job " + j.JobType + " for " + unit
		}
	}
	return intentRestart, "no systemd job for " + unit
}
