package bgp

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

// checkMetrics compares the speaker's metrics named in names with want
// (text exposition format, HELP and TYPE lines included), checks the
// naming with promlint and returns the registry.
func checkMetrics(t *testing.T, sp *Speaker, want string, names ...string) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(sp.Collector())
	if err := promtest.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Errorf("metrics: %v", err)
	}
	problems, err := promtest.CollectAndLint(sp.Collector())
	if err != nil {
		t.Errorf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	return reg
}

// metricValue returns the value of the one sample of name with the label
// values given as name=value pairs; ok is false when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}
