package lab

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aird-net/aird/internal/api"
)

// startLBs configures the LB nodes with the endpoints as backends and
// starts them.
func (l *Lab) startLBs() error {
	svc := servicesConfig(l.Backends())
	for _, n := range l.LBs {
		n.services = svc
		if err := n.WriteConfig(); err != nil {
			return err
		}
		if err := n.Start(); err != nil {
			return err
		}
	}
	return nil
}

// waitServing waits until the rack serves: every session established on
// every node, every backend healthy on both LB nodes, and both VIPs routed
// over both LB nodes by both ToRs.
func (l *Lab) waitServing() error {
	var why string
	if !waitFor(60*time.Second, func() bool {
		why = l.notServing()
		return why == ""
	}) {
		return fmt.Errorf("not serving after 60s: %s", why)
	}
	return nil
}

// notServing says what keeps the rack from serving ("" when it serves).
func (l *Lab) notServing() string {
	for _, n := range l.AllNodes() {
		ns, err := n.Neighbors()
		if err != nil {
			return err.Error()
		}
		for _, p := range ns {
			if p.State != "established" {
				return fmt.Sprintf("%s: session with %s %s", n.Name, p.Name, p.State)
			}
		}
	}
	for _, n := range l.LBs {
		if bad := n.Unhealthy(); len(bad) > 0 {
			return fmt.Sprintf("%s: unhealthy backends %v", n.Name, bad)
		}
	}
	want := []string{l.LBs[0].Name, l.LBs[1].Name}
	for _, vip := range []string{VIP6, VIP4} {
		for _, tor := range []string{l.Tor1.NS, l.Tor2.NS} {
			if got := l.RouteNodes(tor, vip); !slices.Equal(got, want) {
				return fmt.Sprintf("%s routes %s via %v, want %v", tor, vip, got, want)
			}
		}
	}
	return ""
}

// Neighbors returns the node's BGP neighbours (airctl bgp neighbors).
func (n *Node) Neighbors() ([]api.BGPNeighbor, error) {
	var ns []api.BGPNeighbor
	err := n.AirctlJSON(&ns, "bgp", "neighbors")
	return ns, err
}

// Services returns the LB node's services and their backends' health.
func (n *Node) Services() ([]api.LBService, error) {
	var ss []api.LBService
	err := n.AirctlJSON(&ss, "lb", "backends")
	return ss, err
}

// Unhealthy lists "service/backend" for every backend the LB node does not
// call healthy (or an error).
func (n *Node) Unhealthy() []string {
	ss, err := n.Services()
	if err != nil {
		return []string{err.Error()}
	}
	var bad []string
	for _, s := range ss {
		for _, b := range s.Backends {
			if !b.Health.Healthy || b.Health.Checks == 0 {
				bad = append(bad, s.Name+"/"+b.Address.String())
			}
		}
	}
	return bad
}

var viaDev = regexp.MustCompile(`\bdev n(\d+)\b`)

// RouteNodes returns the names of the nodes the kernel of ToR namespace
// tor routes prefix (an address or prefix) through, sorted: one per ECMP
// next hop.
func (l *Lab) RouteNodes(tor, prefix string) []string {
	fam := "-6"
	if !strings.Contains(prefix, ":") {
		fam = "-4"
	}
	out, err := run("ip", "-n", tor, fam, "route", "show", prefix)
	if err != nil {
		return nil
	}
	return l.nodesIn(out)
}

// nodesIn returns the names of the nodes whose ports (dev nI) the route
// text names, sorted.
func (l *Lab) nodesIn(route string) []string {
	var names []string
	for _, m := range viaDev.FindAllStringSubmatch(route, -1) {
		for _, n := range l.AllNodes() {
			if fmt.Sprint(n.Index) == m[1] {
				names = append(names, n.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// LBStats returns the LB node's airctl lb stats -o json.
func (n *Node) LBStats() (api.LBStats, error) {
	var st api.LBStats
	err := n.AirctlJSON(&st, "lb", "stats")
	return st, err
}

// jsonString is v as indented JSON, for messages.
func jsonString(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
