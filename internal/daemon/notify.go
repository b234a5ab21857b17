package daemon

import (
	"fmt"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notifier speaks the sd_notify protocol; outside systemd (no NOTIFY_SOCKET)
// every call is a no-op.
type notifier struct {
	log *slog.Logger
}

func (n notifier) send(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

func (n notifier) ready(status string) { n.send("READY=1\nSTATUS=" + status) }

func (n notifier) status(status string) { n.send("STATUS=" + status) }

// reloading must carry MONOTONIC_USEC with RELOADING=1 (systemd.notify-reload
// semantics), so systemd can tell this reload from an earlier one.
func (n notifier) reloading() {
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=reloading configuration", monotonicUsec()))
}

func (n notifier) stopping() { n.send("STOPPING=1\nSTATUS=stopping") }

func (n notifier) watchdog() { n.send("WATCHDOG=1") }

// watchdogInterval returns how often to ping, or 0 when WatchdogSec is unset.
func (n notifier) watchdogInterval() time.Duration {
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
