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
