package lb

import (
	"context"
	"net/netip"
	"testing"

	"github.com/aird-net/aird/internal/config"
)

// IDs reports the ids the programmer wrote into the maps, a shared backend
// with its one id in every service, and leaves out what is not programmed.
func TestProgrammerIDs(t *testing.T) {
	maps := loadMaps(t)
	p, err := NewProgrammer(maps, testTableSize)
	if err != nil {
		t.Fatal(err)
	}
	web := svc("fd00:100::1", "fd00:100::2")
	dns := config.Service{Name: "dns", VIP: web.VIP, Port: 53, Protocol: "udp",
		Backends: []config.Backend{{Address: netip.MustParseAddr("fd00:100::2"), Weight: 1}, {Address: netip.MustParseAddr("fd00:100::3"), Weight: 1}}}
	if err := p.Sync([]config.Service{web, dns}, all); err != nil {
		t.Fatal(err)
	}
	later := svc("fd00:100::9")
	later.Name, later.Port = "later", 8443
	ids := p.IDs([]config.Service{web, dns, later})
	if len(ids) != 2 || ids[0].Name != "web" || ids[1].Name != "dns" {
		t.Fatalf("IDs = %+v, want web and dns only", ids)
	}
	for _, s := range ids {
		e, ok := vipEntry(t, maps, s.VIP.String(), protoNum(s.Protocol), uint16(s.Port))
		if !ok || e.VipId != s.VIPID {
			t.Errorf("%s: vip id %d, the map holds %+v (%v)", s.Name, s.VIPID, e, ok)
		}
		for _, b := range s.Backends {
			if id := p.BackendID(b.Address); id == 0 || id != b.ID {
				t.Errorf("%s backend %s: id %d, programmed %d", s.Name, b.Address, b.ID, id)
			}
		}
	}
	if ids[0].Backends[1].ID != ids[1].Backends[0].ID {
		t.Errorf("the shared backend has two ids: %+v", ids)
	}

	// A backend added to the configuration but not synced has no id yet.
	web.Backends = append(web.Backends, config.Backend{Address: netip.MustParseAddr("fd00:100::4"), Weight: 1})
	if got := p.IDs([]config.Service{web}); len(got) != 1 || len(got[0].Backends) != 2 {
		t.Fatalf("IDs before the sync = %+v, want the two programmed backends", got)
	}
}

func TestManagerIDs(t *testing.T) {
	m, _ := newManager(t)
	if ids := m.IDs(); ids != nil {
		t.Fatalf("IDs without a programmer = %+v, want nil", ids)
	}
	maps := loadMaps(t)
	p, err := NewProgrammer(maps, testTableSize)
	if err != nil {
		t.Fatal(err)
	}
	m, err = New(context.Background(), Options{OnServing: func([]netip.Addr) {}, Dataplane: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	s := svc("fd00:100::1")
	s.HealthCheck.Type = "none"
	if err := m.Apply([]config.Service{s}); err != nil {
		t.Fatal(err)
	}
	ids := m.IDs()
	if len(ids) != 1 || ids[0].Name != "web" || len(ids[0].Backends) != 1 || ids[0].Backends[0].ID != p.BackendID(s.Backends[0].Address) {
		t.Fatalf("IDs = %+v", ids)
	}
}
