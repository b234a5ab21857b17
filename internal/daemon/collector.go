package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// datapathCollector reads the pipeline's per-CPU counters from the BPF map
// at scrape time.
type datapathCollector struct {
	d                             *datapathComponent
	packets, bytes, events, drops *prometheus.Desc
}

func newDatapathCollector(d *datapathComponent) *datapathCollector {
	return &datapathCollector{
		d: d,
		packets: prometheus.NewDesc("aird_xdp_packets_total",
			"Packets seen by the XDP pipeline on all uplinks, by address family.", []string{"family"}, nil),
		bytes: prometheus.NewDesc("aird_xdp_bytes_total",
			"Bytes seen by the XDP pipeline on all uplinks, by address family.", []string{"family"}, nil),
		events: prometheus.NewDesc("aird_lb_events_total",
			"Load-balancer and decap events in XDP: conntrack hit/miss/insert/evict/syn/promote/full, new flows beyond lb.flood-threshold (ct_flood), tx, redirect, too-big relayed/generated, decap, ...", []string{"event"}, nil),
		drops: prometheus.NewDesc("aird_lb_drops_total",
			"Packets the XDP pipeline dropped, by reason (load balancer, decap: tunnel_source, tunnel_destination, router).", []string{"reason"}, nil),
	}
}

func (c *datapathCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	ch <- c.bytes
	ch <- c.events
	ch <- c.drops
}

func (c *datapathCollector) Collect(ch chan<- prometheus.Metric) {
	if c.d.dp == nil {
		return
	}
	stats, err := c.d.dp.FamilyStats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.packets, err)
		return
	}
	for fam, s := range stats {
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.Packets), fam)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes), fam)
	}
	c.counters(ch, c.events, c.d.dp.LBStats)
	c.counters(ch, c.drops, c.d.dp.DropStats)
}

func (c *datapathCollector) counters(ch chan<- prometheus.Metric, desc *prometheus.Desc, read func() (map[string]uint64, error)) {
	m, err := read()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(desc, err)
		return
	}
	for name, v := range m {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), name)
	}
}
