package daemon

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aird-net/aird/internal/api"
)

// lbCollector reads the per-service and per-backend traffic counters from
// the data plane's per-CPU maps at scrape time. Only services and backends
// with an id assigned now are reported: one series pair per service and
// one per backend address (a backend's counter is per address, whatever
// services it is in), so a scrape grows with services plus addresses, not
// with their product.
type lbCollector struct {
	c                                                  *lbComponent
	vipPackets, vipBytes, backendPackets, backendBytes *prometheus.Desc
}

func newLBCollector(c *lbComponent) *lbCollector {
	svc := []string{"service", "vip", "port", "protocol"}
	be := []string{"backend"}
	return &lbCollector{
		c: c,
		vipPackets: prometheus.NewDesc("aird_lb_vip_packets_total",
			"Packets of a service (VIP, port, protocol) the XDP load balancer picked a backend for.", svc, nil),
		vipBytes: prometheus.NewDesc("aird_lb_vip_bytes_total",
			"Bytes (whole received frames) of a service the XDP load balancer picked a backend for.", svc, nil),
		backendPackets: prometheus.NewDesc("aird_lb_backend_packets_total",
			"Packets the XDP load balancer sent to a backend address, summed over the services it is in.", be, nil),
		backendBytes: prometheus.NewDesc("aird_lb_backend_bytes_total",
			"Bytes (whole received frames) the XDP load balancer sent to a backend address, summed over its services.", be, nil),
	}
}

func (c *lbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.vipPackets
	ch <- c.vipBytes
	ch <- c.backendPackets
	ch <- c.backendBytes
}

func (c *lbCollector) Collect(ch chan<- prometheus.Metric) {
	ss, err := c.c.traffic(nil, false)
	if errors.Is(err, api.ErrNotConfigured) {
		return
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.vipPackets, err)
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, s := range ss {
		l := []string{s.Name, s.VIP.String(), strconv.Itoa(s.Port), s.Protocol}
		counter(c.vipPackets, s.Packets, l...)
		counter(c.vipBytes, s.Bytes, l...)
	}
	if c.c.m == nil {
		return
	}
	ids := c.c.m.BackendIDs()
	keys := make([]uint32, len(ids))
	for i, b := range ids {
		keys[i] = b.ID
	}
	bc, err := c.c.prog.BackendCounters(keys)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.backendPackets, err)
		return
	}
	for _, b := range ids {
		a := b.Address.String()
		counter(c.backendPackets, bc[b.ID].Packets, a)
		counter(c.backendBytes, bc[b.ID].Bytes, a)
	}
}
