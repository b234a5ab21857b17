package bgp

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// peerStates are the values of aird_bgp_peer_state's state label.
var peerStates = []string{"idle", "connect", "active", "opensent", "openconfirm", "established"}

// collector reads the speaker's state at scrape time.
type collector struct {
	s *Speaker

	state, uptime, flaps, bfdUp         *prometheus.Desc
	received, accepted, advertised      *prometheus.Desc
	sendable                            *prometheus.Desc
	fibRoutes, reconcileErrors, drained *prometheus.Desc
	logRepeats                          *prometheus.Desc
}

// Collector returns a Prometheus collector of the speaker's metrics, read
// when scraped: per peer (label peer: the configured name, else the
// address or interface) the session state, uptime, flaps and BFD state,
// and per peer and family (label family: ipv4, ipv6) the routes received,
// accepted and advertised; the routes installed in the FIB, failed FIB
// passes and whether the node is drained. Peers appear only while the
// speaker runs.
func (s *Speaker) Collector() prometheus.Collector {
	peer := []string{"peer"}
	peerFam := []string{"peer", "family"}
	return &collector{
		s: s,
		state: prometheus.NewDesc("aird_bgp_peer_state",
			"BGP session state of the peer: 1 for the current state, 0 for the others.", []string{"peer", "state"}, nil),
		uptime: prometheus.NewDesc("aird_bgp_peer_uptime_seconds",
			"How long the BGP session has been established (0 when it is not).", peer, nil),
		flaps: prometheus.NewDesc("aird_bgp_peer_flaps_total",
			"BGP sessions that went down after being established.", peer, nil),
		bfdUp: prometheus.NewDesc("aird_bgp_peer_bfd_up",
			"Whether the peer's BFD session is up (peers with BFD only).", peer, nil),
		received: prometheus.NewDesc("aird_bgp_peer_routes_received",
			"Routes the peer sent (Adj-RIB-In).", peerFam, nil),
		accepted: prometheus.NewDesc("aird_bgp_peer_routes_accepted",
			"Routes from the peer that the import policy accepted.", peerFam, nil),
		advertised: prometheus.NewDesc("aird_bgp_peer_routes_advertised",
			"Routes advertised to the peer.", peerFam, nil),
		sendable: prometheus.NewDesc("aird_bgp_peer_family_sendable",
			"Whether our routes of the family go to the peer: 0 while the session is down, the peer did not announce the family, or there is no next hop it accepts (airctl bgp neighbors says which).", peerFam, nil),
		fibRoutes: prometheus.NewDesc("aird_bgp_fib_routes",
			"Routes learned over BGP installed in the kernel FIB.", []string{"family"}, nil),
		reconcileErrors: prometheus.NewDesc("aird_bgp_fib_reconcile_errors_total",
			"FIB reconcile passes that failed.", nil, nil),
		logRepeats: prometheus.NewDesc("aird_bgp_gobgp_log_repeats_total",
			"GoBGP log records logged at debug level because the same record for the same peer was logged less than a minute before.", nil, nil),
		drained: prometheus.NewDesc("aird_bgp_drained",
			"Whether the node is drained (graceful shutdown announced or routes withdrawn).", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.uptime, c.flaps, c.bfdUp, c.received, c.accepted,
		c.advertised, c.sendable, c.fibRoutes, c.reconcileErrors, c.drained, c.logRepeats} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.reconcileErrors, prometheus.CounterValue, float64(c.s.reconcileErrors.Load()))
	ch <- prometheus.MustNewConstMetric(c.logRepeats, prometheus.CounterValue, float64(c.s.logRepeats.demote.Load()))
	gauge(c.drained, boolValue(c.s.Drained()))

	c.s.mu.Lock()
	r := c.s.run
	c.s.mu.Unlock()
	if r == nil {
		return
	}
	installed := r.installedCount()
	for _, f := range []families{famIPv4, famIPv6} {
		gauge(c.fibRoutes, float64(installed[f]), f.String())
	}
	for _, p := range c.s.status(true) {
		if p.State == "stopped" {
			continue // stopped since r was read
		}
		for _, st := range peerStates {
			gauge(c.state, boolValue(p.State == st), p.Name, st)
		}
		uptime := 0.0
		if !p.Since.IsZero() {
			uptime = time.Since(p.Since).Seconds()
		}
		gauge(c.uptime, uptime, p.Name)
		ch <- prometheus.MustNewConstMetric(c.flaps, prometheus.CounterValue, float64(p.flaps), p.Name)
		if p.BFD != "" {
			gauge(c.bfdUp, boolValue(p.BFD == "up"), p.Name)
		}
		for _, fam := range p.Families {
			n := p.byFamily[familyNamed(fam)]
			gauge(c.received, float64(n.received), p.Name, fam)
			gauge(c.accepted, float64(n.accepted), p.Name, fam)
			gauge(c.advertised, float64(n.advertised), p.Name, fam)
		}
		for _, fs := range p.FamilyStatus {
			gauge(c.sendable, boolValue(fs.State == FamilySent), p.Name, fs.Family)
		}
	}
}

func familyNamed(s string) families {
	if s == "ipv4" {
		return famIPv4
	}
	return famIPv6
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// installedCount counts our routes in the FIB per family.
func (r *run) installedCount() map[families]int {
	return r.fib.count()
}
