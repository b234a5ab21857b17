package daemon

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aird-net/aird/internal/api"
)

// lbCollector reads the per-service and per-backend traffic counters from
// the data plane's per-CPU maps at scrape time. Only services and backends
// with an id assigned now are reported.
type lbCollector struct {
	c                                                  *lbComponent
	vipPackets, vipBytes, backendPackets, backendBytes *prometheus.Desc
}

func newLBCollector(c *lbComponent) *lbCollector {
	svc := []string{"service", "vip", "port", "protocol"}
	be := append(svc[:len(svc):len(svc)], "backend")
	return &lbCollector{
		c: c,
		vipPackets: prometheus.NewDesc("aird_lb_vip_packets_total",
			"Packets of a service (VIP, port, protocol) the XDP load balancer picked a backend for.", svc, nil),
		vipBytes: prometheus.NewDesc("aird_lb_vip_bytes_total",
			"Bytes (whole received frames) of a service the XDP load balancer picked a backend for.", svc, nil),
		backendPackets: prometheus.NewDesc("aird_lb_backend_packets_total",
			"Packets the XDP load balancer sent to a backend; a backend address in several services has one counter.", be, nil),
		backendBytes: prometheus.NewDesc("aird_lb_backend_bytes_total",
			"Bytes (whole received frames) the XDP load balancer sent to a backend; one counter per backend address.", be, nil),
	}
}

func (c *lbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.vipPackets
	ch <- c.vipBytes
	ch <- c.backendPackets
	ch <- c.backendBytes
}

func (c *lbCollector) Collect(ch chan<- prometheus.Metric) {
	ss, err := c.c.traffic()
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
		for _, b := range s.Backends {
			bl := append(l[:len(l):len(l)], b.Address.String())
			counter(c.backendPackets, b.Packets, bl...)
			counter(c.backendBytes, b.Bytes, bl...)
		}
	}
}
