package daemon

import (
	"net/netip"
	"testing"

	"github.com/aird-net/aird/internal/config"
)

// The lb component keeps the data plane's lb stage idle exactly while no
// service is configured (SETTINGS_F_LB_IDLE): idle after a start without
// services, active once a reload (whole or a services-only change)
// brings one, idle again once the last is removed; the pipeline's
// settings rewritten by the datapath component keep the flag.
func TestLBIdleFollowsServices(t *testing.T) {
	dpc, lbc := lbWithDataplane(t, nil)
	idle := func(want bool, when string) {
		t.Helper()
		got, err := dpc.dp.LBIdle()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s: lb idle = %v, want %v", when, got, want)
		}
	}
	idle(true, "started without services")

	web := config.Service{Name: "web", VIP: netip.MustParseAddr("fd00:300::10"), Port: 443, Protocol: "tcp",
		HealthCheck: config.HealthCheck{Type: "none"},
		Backends:    []config.Backend{{Address: netip.MustParseAddr("fd00:100::1"), Weight: 1}}}
	old := config.Default()
	old.LB.MaglevTableSize = 251
	old.API.Socket = t.TempDir() + "/aird.sock"
	next := *old
	next.Services = []config.Service{web}
	if err := lbc.apply(old, &next); err != nil {
		t.Fatal(err)
	}
	idle(false, "a service configured")
	if err := dpc.dp.SetSettings(pipelineSettings(&next)); err != nil {
		t.Fatal(err)
	}
	idle(false, "settings rewritten with a service")

	empty := next
	empty.Services = nil
	if err := lbc.applyChange(&next, &empty, change{sections: []string{config.SectionServices}, services: &config.ServicesDelta{Removed: []int{0}}}); err != nil {
		t.Fatal(err)
	}
	idle(true, "the last service removed")
	if err := dpc.dp.SetSettings(pipelineSettings(&empty)); err != nil {
		t.Fatal(err)
	}
	idle(true, "settings rewritten without services")
}
