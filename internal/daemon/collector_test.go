package daemon

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/datapath"
)

// A scrape reads the pipeline's per-CPU counters (pipeline_stats) once,
// and its families, events and drops are that reading's.
func TestDatapathMetricsReadTheCountersOnce(t *testing.T) {
	dpc := testDatapath(t)
	c := newDatapathCollector(dpc)
	read, reads := c.read, 0
	var got datapath.PipelineStats
	c.read = func() (datapath.PipelineStats, bool, error) {
		reads++
		s, ok, err := read()
		got = s
		return s, ok, err
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if reads != 1 {
		t.Errorf("one scrape read the counters %d times, want 1", reads)
	}
	series := map[string]map[string]float64{}
	for _, mf := range mfs {
		series[mf.GetName()] = map[string]float64{}
		for _, m := range mf.GetMetric() {
			series[mf.GetName()][m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]map[string]float64{"aird_xdp_packets_total": {}, "aird_xdp_bytes_total": {},
		"aird_lb_events_total": {}, "aird_lb_drops_total": {}}
	for fam, v := range got.Families() {
		want["aird_xdp_packets_total"][fam] = float64(v.Packets)
		want["aird_xdp_bytes_total"][fam] = float64(v.Bytes)
	}
	for name, v := range got.Events() {
		want["aird_lb_events_total"][name] = float64(v)
	}
	for name, v := range got.Drops() {
		want["aird_lb_drops_total"][name] = float64(v)
	}
	if n := len(want["aird_lb_events_total"]); n != len(bpf.LBStats()) {
		t.Errorf("%d events, want %d", n, len(bpf.LBStats()))
	}
	for name, w := range want {
		if len(series[name]) != len(w) {
			t.Errorf("%s: %d series, want %d", name, len(series[name]), len(w))
		}
		for l, v := range w {
			if g, ok := series[name][l]; !ok || g != v {
				t.Errorf("%s{%s} = %v (%v), want %v", name, l, g, ok, v)
			}
		}
	}
}

// Without a data plane the datapath collector reports nothing and does
// not fail the scrape.
func TestDatapathMetricsWithoutDataplane(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newDatapathCollector(&datapathComponent{}))
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 0 {
		t.Fatalf("Gather = %v, %v; want nothing", mfs, err)
	}
}
