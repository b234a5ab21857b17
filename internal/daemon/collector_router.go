package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// routerCollector reads the endpoints' counters and the router stage's
// events from the data plane at scrape time.
type routerCollector struct {
	c                                        *routerComponent
	endpoints, packets, bytes, drops, events *prometheus.Desc
}

func newRouterCollector(c *routerComponent) *routerCollector {
	return &routerCollector{
		c: c,
		endpoints: prometheus.NewDesc("aird_endpoints", "Endpoints by kind and state (ready, missing: its link is gone).",
			[]string{"kind", "state"}, nil),
		packets: prometheus.NewDesc("aird_endpoint_packets_total",
			"Packets the XDP router delivered to an endpoint (direction rx), and packets the endpoint sent that passed the source check (tx: forwarded in XDP or left to the kernel).",
			[]string{"endpoint", "direction"}, nil),
		bytes: prometheus.NewDesc("aird_endpoint_bytes_total", "Bytes of aird_endpoint_packets_total.",
			[]string{"endpoint", "direction"}, nil),
		drops: prometheus.NewDesc("aird_endpoint_drops_total",
			"Packets dropped for an endpoint: spoofed (sent from an address not its own), tunnel (a tunnel packet to it it does not decapsulate).",
			[]string{"endpoint", "reason"}, nil),
		events: prometheus.NewDesc("aird_router_events_total",
			"Router stage events (enum router_stat): delivered, forwarded, decap, and the reasons packets went to the kernel.",
			[]string{"event"}, nil),
	}
}

func (c *routerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.endpoints, c.packets, c.bytes, c.drops, c.events} {
		ch <- d
	}
}

func (c *routerCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.c.manager()
	if m == nil {
		return
	}
	states := map[[2]string]int{}
	for _, st := range m.List() {
		states[[2]string{st.Kind, st.State}]++
		k := st.Counters
		for _, v := range []struct {
			d      *prometheus.Desc
			val    uint64
			l1, l2 string
		}{
			{c.packets, k.RxPackets, st.Name, "rx"}, {c.packets, k.TxPackets, st.Name, "tx"},
			{c.bytes, k.RxBytes, st.Name, "rx"}, {c.bytes, k.TxBytes, st.Name, "tx"},
			{c.drops, k.DropSpoofed, st.Name, "spoofed"}, {c.drops, k.DropDecap, st.Name, "tunnel"},
		} {
			ch <- prometheus.MustNewConstMetric(v.d, prometheus.CounterValue, float64(v.val), v.l1, v.l2)
		}
	}
	for ks, n := range states {
		ch <- prometheus.MustNewConstMetric(c.endpoints, prometheus.GaugeValue, float64(n), ks[0], ks[1])
	}
	ev, err := m.Events()
	if err != nil {
		return
	}
	for name, v := range ev {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(v), name)
	}
}
