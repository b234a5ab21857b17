package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aird-net/aird/internal/datapath"
)

// datapathCollector reads the pipeline's per-CPU counters from the BPF map
// at scrape time, once per scrape: the families, events and drops it
// reports are of that one reading.
type datapathCollector struct {
	// read reads the counters; ok is false without a data plane.
	read                          func() (s datapath.PipelineStats, ok bool, err error)
	packets, bytes, events, drops *prometheus.Desc
}

func newDatapathCollector(d *datapathComponent) *datapathCollector {
	return &datapathCollector{
		read: func() (datapath.PipelineStats, bool, error) {
			if d.dp == nil {
				return datapath.PipelineStats{}, false, nil
			}
			s, err := d.dp.PipelineStats()
			return s, true, err
		},
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
	stats, ok, err := c.read()
	if !ok {
		return
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.packets, err)
		return
	}
	for fam, s := range stats.Families() {
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.Packets), fam)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes), fam)
	}
	counterMetrics(ch, c.events, stats.Events())
	counterMetrics(ch, c.drops, stats.Drops())
}

func counterMetrics(ch chan<- prometheus.Metric, desc *prometheus.Desc, m map[string]uint64) {
	for name, v := range m {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), name)
	}
}
