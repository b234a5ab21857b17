package daemon

import (
	"context"
	"os"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// stopIntent says why aird is stopping, which decides what it leaves behind
// for the switches: a restart keeps BGP routes (graceful restart, no CEASE),
// a stop withdraws them so the fabric converges at once. The data plane
// stays pinned either way.
type stopIntent string

const (
	intentRestart stopIntent = "restart" // systemctl restart, or unknown: keep everything in place
	intentStop    stopIntent = "stop"    // systemctl stop: withdraw routes
)

// systemdStopIntent asks systemd, over its private bus, which job is
// stopping this unit: "stop" means stop; "restart" and its variants mean
// restart. Outside systemd, or when systemd cannot be asked, a SIGTERM is
// treated as a restart, the choice that never loses traffic.
func systemdStopIntent(ctx context.Context) (stopIntent, string) {
	if os.Getenv("INVOCATION_ID") == "" {
		return intentRestart, "not started by systemd"
	}
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
