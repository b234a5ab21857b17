package daemon

import (
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/datapath"
	"github.com/aird-net/aird/internal/testutil"
)

// testDatapath opens a small datapath on a private pin path (privileged),
// closed and torn down when the test ends.
func testDatapath(t *testing.T) *datapathComponent {
	t.Helper()
	testutil.RequirePrivileged(t)
	pin := testutil.TempPinPath(t)
	t.Cleanup(func() { _ = datapath.Teardown(pin) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dp, err := datapath.Open(datapath.Options{PinPath: pin, XDPMode: datapath.ModeAuto, MaxVIPs: 64, MaxBackends: 64, ConntrackSize: 4096, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	dpc := &datapathComponent{log: log, dp: dp}
	t.Cleanup(func() { _ = dpc.close(intentRestart) })
	return dpc
}

// lbWithDataplane starts the datapath and lb components on a private pin
// path with services programmed.
func lbWithDataplane(t *testing.T, services []config.Service) (*datapathComponent, *lbComponent) {
	t.Helper()
	dpc := testDatapath(t)
	lbc := &lbComponent{log: dpc.log, onServing: func([]netip.Addr) {}, dp: dpc}
	cfg := config.Default()
	cfg.LB.MaglevTableSize = 251
	cfg.API.Socket = filepath.Join(t.TempDir(), "aird.sock") // the drain file goes next to it
	cfg.Services = services
	if err := lbc.apply(nil, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lbc.close(intentRestart) })
	return dpc, lbc
}

// Every LB event and drop reason is exported, and every programmed
// service and backend has its traffic series (a pedantic registry also
// checks the metrics against their descriptions).
func TestLBMetricsCoverEveryCounter(t *testing.T) {
	web := config.Service{Name: "web", VIP: netip.MustParseAddr("fd00:300::10"), Port: 443, Protocol: "tcp",
		HealthCheck: config.HealthCheck{Type: "none"},
		Backends:    []config.Backend{{Address: netip.MustParseAddr("fd00:100::1"), Weight: 1}, {Address: netip.MustParseAddr("fd00:100::2"), Weight: 1}}}
	dpc, lbc := lbWithDataplane(t, []config.Service{web})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newDatapathCollector(dpc), newLBCollector(lbc))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]map[string]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[mf.GetName()] = append(got[mf.GetName()], labels)
		}
	}
	has := func(metric string, want map[string]string) bool {
		return slices.ContainsFunc(got[metric], func(l map[string]string) bool {
			for k, v := range want {
				if l[k] != v {
					return false
				}
			}
			return true
		})
	}
	for _, s := range bpf.LBStats() {
		if !has("aird_lb_events_total", map[string]string{"event": s.String()}) {
			t.Errorf("aird_lb_events_total lacks event %q", s)
		}
	}
	for _, r := range bpf.DropReasons() {
		if !has("aird_lb_drops_total", map[string]string{"reason": r.String()}) {
			t.Errorf("aird_lb_drops_total lacks reason %q", r)
		}
	}
	svc := map[string]string{"service": "web", "vip": "fd00:300::10", "port": "443", "protocol": "tcp"}
	for _, name := range []string{"aird_lb_vip_packets_total", "aird_lb_vip_bytes_total"} {
		if len(got[name]) != 1 || !has(name, svc) {
			t.Errorf("%s: %v, want one series %v", name, got[name], svc)
		}
	}
	for _, name := range []string{"aird_lb_backend_packets_total", "aird_lb_backend_bytes_total"} {
		for _, b := range web.Backends {
			if !has(name, map[string]string{"backend": b.Address.String()}) {
				t.Errorf("%s lacks backend %s: %v", name, b.Address, got[name])
			}
		}
		if len(got[name]) != len(web.Backends) {
			t.Errorf("%s: %d series, want %d", name, len(got[name]), len(web.Backends))
		}
	}

	d := &Daemon{dp: dpc, lb: lbc}
	st, err := d.LBStats(api.LBServiceQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Events) != len(bpf.LBStats()) || len(st.Drops) != len(bpf.DropReasons()) || len(st.Services) != 1 ||
		st.Services[0].Name != "web" || st.Services[0].Backends != nil {
		t.Fatalf("LBStats = %+v", st)
	}
	st, err = d.LBStats(api.LBServiceQuery{Name: "web"})
	if err != nil || st.Events != nil || len(st.Services) != 1 || len(st.Services[0].Backends) != 2 {
		t.Fatalf("LBStats of web = %+v, %v", st, err)
	}
	l, err := d.LBServices(api.LBServiceQuery{Backends: true})
	if err != nil || len(l.Services) != 1 || l.Services[0].Packets == nil || len(l.Services[0].Backends) != 2 ||
		l.Services[0].Backends[0].Packets == nil || l.Services[0].Usable != 2 {
		t.Fatalf("LBServices = %+v, %v", l, err)
	}
}

// Without a data plane there is no traffic to report: no series, and the
// scrape does not fail.
func TestLBMetricsWithoutDataplane(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newLBCollector(&lbComponent{dp: &datapathComponent{}}))
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 0 {
		t.Fatalf("Gather = %v, %v; want nothing", mfs, err)
	}
}
