package daemon

import (
	"math/big"

	"github.com/prometheus/client_golang/prometheus"
)

// ipamCollector reads pool sizes and use from the allocator at scrape time.
type ipamCollector struct {
	c               *ipamComponent
	size, allocated *prometheus.Desc
}

func newIPAMCollector(c *ipamComponent) *ipamCollector {
	return &ipamCollector{
		c: c,
		size: prometheus.NewDesc("aird_ipam_pool_size",
			"Addresses a pool can hand out on this node (first and reserved addresses excluded; a pod pool counts this node's pod prefixes).",
			[]string{"pool", "kind"}, nil),
		allocated: prometheus.NewDesc("aird_ipam_pool_allocated",
			"Addresses allocated or reserved in a pool, by family.", []string{"pool", "kind", "family"}, nil),
	}
}

func (c *ipamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.allocated
}

func (c *ipamCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.c.allocator()
	if a == nil {
		return
	}
	for _, p := range a.Pools() {
		size, _ := new(big.Float).SetInt(p.Size).Float64()
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, size, p.Name, string(p.Kind))
		for fam, n := range p.Used {
			ch <- prometheus.MustNewConstMetric(c.allocated, prometheus.GaugeValue, float64(n), p.Name, string(p.Kind), string(fam))
		}
	}
}

// podConflictCollector reports the pod prefixes another BGP speaker also
// announces (not advertised while that lasts).
type podConflictCollector struct {
	c    *bgpComponent
	desc *prometheus.Desc
}

func newPodConflictCollector(c *bgpComponent) podConflictCollector {
	return podConflictCollector{c: c, desc: prometheus.NewDesc("aird_ipam_pod_prefix_conflict",
		"1 for a pod prefix that a route learned over BGP (equal or more specific) also claims; the node does not advertise it meanwhile.",
		[]string{"pod_prefix", "route", "peer"}, nil)}
}

func (p podConflictCollector) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p podConflictCollector) Collect(ch chan<- prometheus.Metric) {
	for _, cf := range p.c.podPrefixConflicts() {
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue, 1, cf.PodPrefix.String(), cf.Route.String(), cf.Peer)
	}
}
