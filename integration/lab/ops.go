package lab

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// SessionsDown takes node n's BGP sessions down from the switches' side
// (FRR: neighbor shutdown; BIRD: disable): the ToRs withdraw its routes and
// move its flows to the other nodes, while n itself keeps running.
func (l *Lab) SessionsDown(n *Node) error {
	if _, err := l.Tor1.configure(fmt.Sprintf("neighbor %s shutdown", n.tor1Port())); err != nil {
		return err
	}
	out, err := l.Tor2.Birdc("disable", n.Name)
	if err != nil {
		return fmt.Errorf("birdc disable %s: %w\n%s", n.Name, err, out)
	}
	return nil
}

// SessionsUp undoes SessionsDown.
func (l *Lab) SessionsUp(n *Node) error {
	if _, err := l.Tor1.configure(fmt.Sprintf("no neighbor %s shutdown", n.tor1Port())); err != nil {
		return err
	}
	out, err := l.Tor2.Birdc("enable", n.Name)
	if err != nil {
		return fmt.Errorf("birdc enable %s: %w\n%s", n.Name, err, out)
	}
	return nil
}

// configure runs one line in tor1's router bgp context.
func (f *FRRTor) configure(line string) (string, error) {
	out, err := run("vtysh", "--vty_socket", f.Dir, "-c", "configure terminal",
		"-c", fmt.Sprintf("router bgp %d", asTor1), "-c", line)
	if err != nil {
		return out, fmt.Errorf("vtysh %q: %w\n%s", line, err, out)
	}
	return out, nil
}

// SetLinks sets every link of namespace ns (but lo) down or up: a ToR
// lost, or back.
func SetLinks(ns string, up bool) error {
	out, err := run("ip", "-n", ns, "-j", "link", "show")
	if err != nil {
		return err
	}
	var links []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return fmt.Errorf("ip -j link show in %s: %w", ns, err)
	}
	state := "down"
	if up {
		state = "up"
	}
	for _, l := range links {
		if l.Name == "lo" {
			continue
		}
		if _, err := run("ip", "-n", ns, "link", "set", l.Name, state); err != nil {
			return err
		}
	}
	return nil
}

// RouteWatch samples both ToRs' kernel routes to the VIPs every 50 ms,
// and follows every change their kernels make to them (ip monitor), and
// records every time one of the expected LB nodes was missing from them or
// a route was deleted: what a restart must never cause.
type RouteWatch struct {
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	miss     []string
	n        int
	lab      *Lab
	want     []string
	monitors []*routeMonitor
}

// WatchRoutes starts watching that both ToRs route both VIPs via all of
// nodes.
func (l *Lab) WatchRoutes(nodes ...*Node) (*RouteWatch, error) {
	w := &RouteWatch{stop: make(chan struct{}), done: make(chan struct{}), lab: l}
	var want []string
	for _, n := range nodes {
		want = append(want, n.Name)
	}
	w.want = want
	ms, err := monitorAll(l.Tor1.NS, l.Tor2.NS)
	if err != nil {
		return nil, err
	}
	w.monitors = ms
	go func() {
		defer close(w.done)
		for {
			for _, tor := range []string{l.Tor1.NS, l.Tor2.NS} {
				for _, vip := range []string{VIP6, VIP4} {
					got := l.RouteNodes(tor, vip)
					for _, n := range want {
						if !slices.Contains(got, n) {
							w.mu.Lock()
							if len(w.miss) < 10 {
								w.miss = append(w.miss, fmt.Sprintf("%s %s: %s routes %s via %v", time.Now().Format("15:04:05.000"), n, tor, vip, got))
							}
							w.mu.Unlock()
						}
					}
				}
			}
			w.mu.Lock()
			w.n++
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return w, nil
}

// Stop ends the watch and returns the misses seen (sampled, then the
// route changes the monitors saw) and how many samples were taken.
func (w *RouteWatch) Stop() (misses []string, samples int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	misses = w.miss
	for _, m := range w.monitors {
		misses = append(misses, w.lab.vipMisses(m.ns, m.stop(), w.want)...)
	}
	return misses, w.n
}

// WaitRestartsDone waits until tor2 (BIRD) no longer holds any node in
// graceful restart: a node that restarted has sent its End-of-RIB. (A
// second restart before that makes a switch flush the stale routes, as
// RFC 4724 says it must.)
func (l *Lab) WaitRestartsDone(within time.Duration) error {
	var last string
	if !waitFor(within, func() bool {
		for _, n := range l.AllNodes() {
			out, err := l.Tor2.Birdc("show", "protocols", "all", n.Name)
			if err != nil || strings.Contains(out, "Neighbor graceful restart active") {
				last = n.Name + ": " + strings.TrimSpace(out)
				return false
			}
		}
		return true
	}) {
		return fmt.Errorf("tor2 still in graceful restart with a node after %s: %s", within, last)
	}
	return nil
}
