package daemon

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/datapath"
	"github.com/aird-net/aird/internal/testutil"
	"github.com/aird-net/aird/lb"
	"github.com/aird-net/aird/lb/health"
)

// A service with a tunnelled check sets up the probe program and routing
// (not without uplinks: its checks go direct); a restart leaves the routing
// for the next process, an intended stop removes it. Everything runs inside
// a namespace of its own.
func TestProbeRoutingFollowsStopIntent(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetns(t, "dlp")
	testutil.Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	pin := testutil.TempPinPath(t)
	t.Cleanup(func() { testutil.InNetns(t, ns, func() { _ = datapath.Teardown(pin) }) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	cfg.Node.Underlay = []netip.Addr{netip.MustParseAddr("fd00:1::1")}
	cfg.Node.Uplinks = []string{"u0"} // not attached: only its presence matters here
	cfg.Services = []config.Service{{Name: "web", VIP: netip.MustParseAddr("fd00:300::10"), Port: 8080, Protocol: "tcp",
		HealthCheck: config.HealthCheck{Type: "tcp", Port: 8080, Interval: config.Duration(time.Second),
			Timeout: config.Duration(100 * time.Millisecond), Rise: 1, Fall: 1, Via: health.ViaTunnel},
		Backends: []config.Backend{{Address: netip.MustParseAddr("fd00:2::2"), Weight: 1}}}}

	installed := func() bool {
		ok, err := datapath.ProbeRoutingInstalled()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	run := func(cfg *config.Config, intent stopIntent) {
		dp, err := datapath.Open(datapath.Options{PinPath: pin, XDPMode: datapath.ModeAuto, MaxVIPs: 64, MaxBackends: 64,
			ConntrackSize: 4096, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		dpc := &datapathComponent{log: log, dp: dp}
		lbc := &lbComponent{log: log, onServing: func([]netip.Addr) {}, dp: dpc}
		if err := lbc.apply(nil, cfg); err != nil {
			t.Fatal(err)
		}
		l, err := lbc.m.Services(lb.ServiceQuery{Backends: true})
		if err != nil {
			t.Fatal(err)
		}
		st := l.Services[0].Backends[0].Health
		if len(cfg.Node.Uplinks) == 0 {
			if installed() || st.Via != health.ViaDirect || !strings.Contains(st.Fallback, "no node.uplinks") {
				t.Fatalf("without uplinks: routing installed %v, check goes %q (fallback %q)", installed(), st.Via, st.Fallback)
			}
		} else {
			if !installed() {
				t.Fatal("probe routing not installed for a tunnelled check")
			}
			if st.Via != health.ViaTunnel || st.Fallback != "" {
				t.Fatalf("check goes %q (fallback %q)", st.Via, st.Fallback)
			}
		}
		if err := lbc.close(intent); err != nil {
			t.Fatal(err)
		}
		if err := dpc.close(intent); err != nil {
			t.Fatal(err)
		}
	}
	testutil.InNetns(t, ns, func() {
		noUplinks := *cfg
		noUplinks.Node.Uplinks = nil
		run(&noUplinks, intentStop)
		run(cfg, intentRestart)
		if !installed() {
			t.Fatal("a restart removed the probe routing")
		}
		run(cfg, intentStop)
		if installed() {
			t.Fatal("an intended stop left the probe routing")
		}
	})
}
