package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// datapathCollector reads the pipeline's per-CPU counters from the BPF map
// at scrape time.
type datapathCollector struct {
	d              *datapathComponent
	packets, bytes *prometheus.Desc
}

func newDatapathCollector(d *datapathComponent) *datapathCollector {
	return &datapathCollector{
		d: d,
		packets: prometheus.NewDesc("aird_xdp_packets_total",
			"Packets seen by the XDP pipeline on all uplinks, by address family.", []string{"family"}, nil),
		bytes: prometheus.NewDesc("aird_xdp_bytes_total",
			"Bytes seen by the XDP pipeline on all uplinks, by address family.", []string{"family"}, nil),
	}
}

func (c *datapathCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	ch <- c.bytes
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
}
