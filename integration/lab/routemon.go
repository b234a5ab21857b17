package lab

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// routeMonitor records every change the kernel of a ToR namespace makes to
// its routes (ip monitor route), so that a route deleted and added again
// between two samples of a RouteWatch is seen too.
type routeMonitor struct {
	ns     string
	cancel context.CancelFunc
	cmd    *exec.Cmd
	out    testutil.SyncBuffer
}

// startRouteMonitor runs ip monitor route in ns until stop.
func startRouteMonitor(ns string) (*routeMonitor, error) {
	ctx, cancel := context.WithCancel(context.Background())
	m := &routeMonitor{ns: ns, cancel: cancel}
	m.cmd = exec.CommandContext(ctx, "ip", "-ts", "-n", ns, "monitor", "route")
	m.cmd.Stdout = &m.out
	if err := m.cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("ip monitor route in %s: %w", ns, err)
	}
	return m, nil
}

// stop ends the monitor and returns what it printed.
func (m *routeMonitor) stop() string {
	m.cancel()
	_ = m.cmd.Wait()
	return m.out.String()
}

// routeEvents splits ip -ts monitor output into events: a line starting
// with the timestamp, and the next hop lines indented below it.
func routeEvents(out string) []string {
	var events []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "["):
			events = append(events, line)
		case line != "" && len(events) > 0:
			events[len(events)-1] += "\n" + line
		}
	}
	return events
}

// vipMisses returns the events of tor's monitor output that took a VIP
// route away or left one of want (node names) out of it.
func (l *Lab) vipMisses(tor, out string, want []string) []string {
	var misses []string
	for _, ev := range routeEvents(out) {
		ts, rest, _ := strings.Cut(ev, "] ")
		deleted := strings.HasPrefix(rest, "Deleted ")
		dst, _, _ := strings.Cut(strings.TrimPrefix(rest, "Deleted "), " ")
		if !slices.Contains([]string{VIP6, VIP4, VIP6 + "/128", VIP4 + "/32"}, dst) {
			continue
		}
		ts = strings.TrimPrefix(ts, "[")
		if deleted {
			misses = append(misses, fmt.Sprintf("%s %s deleted the route to %s (ip monitor): %s", ts, tor, dst, ev))
			continue
		}
		got := l.nodesIn(ev)
		for _, n := range want {
			if !slices.Contains(got, n) {
				misses = append(misses, fmt.Sprintf("%s %s: %s routes %s via %v (ip monitor)", ts, n, tor, dst, got))
			}
		}
	}
	return misses
}

// monitorAll starts a route monitor in each of nss.
func monitorAll(nss ...string) ([]*routeMonitor, error) {
	var ms []*routeMonitor
	for _, ns := range nss {
		m, err := startRouteMonitor(ns)
		if err != nil {
			for _, m := range ms {
				m.stop()
			}
			return nil, err
		}
		ms = append(ms, m)
	}
	// Subscribed before anything happens.
	time.Sleep(100 * time.Millisecond)
	return ms, nil
}
