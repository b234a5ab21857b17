package lb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

func newManagerWith(t *testing.T, dp Dataplane, dir string) *Manager {
	t.Helper()
	m, err := New(context.Background(), Options{OnServing: func([]netip.Addr) {}, Dataplane: dp, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// A reload hands the data plane only what changed: one service of 100
// changed is one upsert, an unchanged reload none; a changed table size
// cap or slots per backend re-programs all; a bad one changes nothing.
func TestApplyProgramsOnlyChanges(t *testing.T) {
	fp := &fakePlane{}
	m := newManagerWith(t, fp, "")
	ss := manyServices(100)
	apply(t, m, ss...)
	next := manyServices(100)
	next[42].Backends[0].Weight = 7
	apply(t, m, next...)
	apply(t, m, manyServices(100)[:99]...) // 42 back, 99 removed
	if err := m.Apply(Config{Services: manyServices(99), MaglevTableSize: 4093}); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Config{Services: manyServices(99), MaglevTableSize: 4093, MaglevSlotsPerBackend: 200}); err != nil {
		t.Fatal(err)
	}
	if c := fp.calls[len(fp.calls)-1]; c.SlotsPerBackend != 200 || c.TableSize != 4093 {
		t.Fatalf("slots per backend change handed %d slots, cap %d, want 200, 4093", c.SlotsPerBackend, c.TableSize)
	}
	if err := m.Apply(Config{Services: manyServices(99), MaglevTableSize: 4093, MaglevSlotsPerBackend: 99}); err == nil {
		t.Fatal("99 slots per backend accepted")
	}
	got := fp.upserts()
	if want := []int{100, 1, 1, 99, 99}; !slices.Equal(got, want) {
		t.Fatalf("upserts per Apply = %v, want %v", got, want)
	}
	if c := fp.calls[2]; len(c.Remove) != 1 || c.Remove[0] != ss[99].Key() {
		t.Fatalf("third apply removed %v, want %s", c.Remove, ss[99].Key())
	}
}

// A change the data plane refuses leaves the manager as it was: its
// services, health targets, ids and status.
func TestRefusedApplyChangesNothing(t *testing.T) {
	fp := &fakePlane{}
	m := newManagerWith(t, fp, "")
	web := service("web", "fd00:300::10", 9, "127.0.0.1")
	apply(t, m, web)
	before, _ := m.Services(ServiceQuery{Backends: true})
	targets := m.checks.Len()
	fp.fail = errors.New("boom")
	dns := service("dns", "fd00:300::53", 9, "127.0.0.2", "127.0.0.3")
	if err := m.Apply(Config{Services: []Service{web, dns}}); err == nil {
		t.Fatal("a refused change was reported applied")
	}
	after, _ := m.Services(ServiceQuery{Backends: true})
	if len(after.Services) != 1 || after.Services[0].Name != "web" || m.checks.Len() != targets ||
		len(after.Services[0].Backends) != len(before.Services[0].Backends) {
		t.Fatalf("after a refused change: %+v, %d health targets (was %d)", after, m.checks.Len(), targets)
	}
	// A configuration over the data plane's limits is refused before
	// the data plane is asked.
	fp.fail = nil
	calls := len(fp.upserts())
	if err := m.Apply(Config{Services: manyServices(1001)}); err == nil {
		t.Fatal("1001 services on 1000 vip ids accepted")
	} else if len(fp.upserts()) != calls {
		t.Fatal("the data plane was asked to program a configuration over its limits")
	}
}

func TestManagerIDs(t *testing.T) {
	m, _ := newManager(t)
	if ids := m.IDs(nil, true); ids != nil {
		t.Fatalf("IDs without a data plane = %+v, want nil", ids)
	}
	maps := loadMaps(t)
	p := NewProgrammer(maps, ProgrammerOptions{})
	m = newManagerWith(t, p, "")
	s := svc("fd00:100::1", "fd00:100::2")
	dns := svc("fd00:100::2", "fd00:100::3")
	dns.Name, dns.Port, dns.Protocol = "dns", 53, "udp"
	apply(t, m, s, dns)
	ids := m.IDs(nil, true)
	if len(ids) != 2 || ids[0].Name != "web" || ids[1].Name != "dns" || len(ids[0].Backends) != 2 {
		t.Fatalf("IDs = %+v", ids)
	}
	for _, sid := range ids {
		e, ok := vipEntry(t, maps, sid.VIP.String(), protoNum(sid.Protocol), uint16(sid.Port))
		if !ok || e.VipId != sid.VIPID {
			t.Errorf("%s: vip id %d, the map holds %+v", sid.Name, sid.VIPID, e)
		}
	}
	if ids[0].Backends[1].ID != ids[1].Backends[0].ID {
		t.Errorf("the shared backend has two ids: %+v", ids)
	}
	if n := len(m.BackendIDs()); n != 3 {
		t.Errorf("%d backend ids, want 3", n)
	}
	only := m.IDs(func(s *Service) bool { return s.Name == "dns" }, false)
	if len(only) != 1 || only[0].Backends != nil {
		t.Errorf("IDs of dns without backends = %+v", only)
	}
}

// Services pages in configuration order.
func TestServicesPaging(t *testing.T) {
	m := newManagerWith(t, &fakePlane{}, "")
	apply(t, m, manyServices(25)...)
	var names []string
	after := ""
	for pages := 0; ; pages++ {
		l, err := m.Services(ServiceQuery{After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range l.Services {
			names = append(names, s.Name)
			if s.Backends != nil || s.Total != 3 || s.Usable != 3 || !s.Serving {
				t.Fatalf("%+v", s)
			}
		}
		if l.Next == "" {
			if pages != 2 {
				t.Fatalf("%d pages, want 3", pages+1)
			}
			break
		}
		after = l.Next
	}
	for i, n := range names {
		if n != fmt.Sprintf("s%d", i) {
			t.Fatalf("names %v", names)
		}
	}
	if _, err := m.Services(ServiceQuery{After: "nope"}); err == nil {
		t.Fatal("a cursor naming no service was accepted")
	}
}

// A drain survives a restart of the manager (the state directory keeps
// it) and is forgotten when the backend leaves the configuration.
func TestDrainSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := svc("fd00:100::1", "fd00:100::2")
	m := newManagerWith(t, &fakePlane{}, dir)
	apply(t, m, s)
	if err := m.SetDrained("web", netip.MustParseAddr("fd00:100::2"), true); err != nil {
		t.Fatal(err)
	}
	m.Close()
	fp := &fakePlane{}
	m2 := newManagerWith(t, fp, dir)
	apply(t, m2, s)
	if u := fp.calls[0].Upsert[0].Usable; !slices.Equal(u, []bool{true, false}) {
		t.Fatalf("after a restart the first program has usable %v, want the drained backend excluded", u)
	}
	l, _ := m2.Services(ServiceQuery{Backends: true})
	if b := l.Services[0].Backends[1]; !b.Drained {
		t.Fatalf("after a restart %+v is not drained", b)
	}
	apply(t, m2, svc("fd00:100::1"))
	m2.Close()
	m3 := newManagerWith(t, &fakePlane{}, dir)
	apply(t, m3, s)
	l, _ = m3.Services(ServiceQuery{Backends: true})
	if b := l.Services[0].Backends[1]; b.Drained {
		t.Fatal("a drain outlived its backend's removal from the configuration")
	}
}

// After a restart, a table adopted from the earlier process stays as it
// was - an unhealthy backend stays out - until each backend of the
// service has answered its first probe; then the answers decide.
func TestRestartKeepsHealthView(t *testing.T) {
	maps := loadMaps(t)
	stop := backendServer(t, "127.0.0.5:18082")
	defer stop()
	web := service("web", "fd00:300::10", 18082, "127.0.0.5", "127.0.0.6") // .6 never answers
	m1 := newManagerWith(t, NewProgrammer(maps, ProgrammerOptions{}), "")
	apply(t, m1, web)
	vid := func(m *Manager) uint32 { return m.IDs(nil, false)[0].VIPID }
	down, _ := m1.ids.Backend(netip.MustParseAddr("127.0.0.6"))
	waitFor(t, "the dead backend out of the table", func() bool { return shares(kernelTable(t, maps, vid(m1)))[down] == 0 })
	table := tableID(t, maps, vid(m1))
	m1.Close()

	// The restarted manager probes slowly: its first round comes well
	// after Apply.
	slow := web
	slow.HealthCheck.Interval, slow.HealthCheck.Timeout = 2e9, 1e9
	m2 := newManagerWith(t, NewProgrammer(maps, ProgrammerOptions{}), "")
	apply(t, m2, slow)
	if got := tableID(t, maps, vid(m2)); got != table {
		t.Fatalf("the restart replaced the adopted table before any probe answered (%d -> %d)", table, got)
	}
	l, _ := m2.Services(ServiceQuery{Backends: true})
	if l.Services[0].Usable != 1 || !l.Services[0].Serving || l.Services[0].Backends[1].Health.Known {
		t.Fatalf("before the first probes: %+v", l.Services[0])
	}
	waitFor(t, "both backends probed", func() bool {
		l, _ := m2.Services(ServiceQuery{Backends: true})
		b := l.Services[0].Backends
		return b[0].Health.Known && b[1].Health.Known
	})
	l, _ = m2.Services(ServiceQuery{Backends: true})
	if b := l.Services[0].Backends; !b[0].Health.Healthy || b[1].Health.Healthy {
		t.Fatalf("after the first probes: %+v", b)
	}
	if shares(kernelTable(t, maps, vid(m2)))[down] != 0 {
		t.Fatal("the dead backend was put back into the table after the restart")
	}
}

// Update hands the data plane only the services a Delta names, checks
// them against those that stay, and leaves the manager where Apply of the
// same configuration would: a change of nothing programs nothing, a moved
// port is one removal and one upsert, a refused change changes nothing.
func TestUpdateProgramsOnlyTheDelta(t *testing.T) {
	fp := &fakePlane{}
	m := newManagerWith(t, fp, "")
	ss := manyServices(100)
	apply(t, m, ss...)
	update := func(ss []Service, d Delta) error {
		t.Helper()
		return m.Update(Config{Services: ss, MaglevTableSize: testCap}, d)
	}
	calls := func() int { return len(fp.upserts()) }

	if err := update(slices.Clone(ss), Delta{}); err != nil || calls() != 1 {
		t.Fatalf("an empty delta: %v, %d calls to the data plane (want the first Apply's alone)", err, calls())
	}
	next := manyServices(100)
	next[42].Port = 81
	if err := update(next, Delta{Changed: []int{42}}); err != nil {
		t.Fatal(err)
	}
	c := fp.calls[len(fp.calls)-1]
	if len(c.Upsert) != 1 || c.Upsert[0].Service.Name != "s42" || len(c.Remove) != 1 || c.Remove[0] != ss[42].Key() || c.Full {
		t.Fatalf("moving one port programmed %d upserts, removals %v, full %v", len(c.Upsert), c.Remove, c.Full)
	}
	// A changed service named unchanged is programmed no more than once.
	if err := update(next, Delta{Changed: []int{42}}); err != nil || calls() != 2 {
		t.Fatalf("a delta naming an unchanged service: %v, %d calls", err, calls())
	}
	// One removed, one added.
	added := manyServices(101)[100]
	next2 := append(slices.Clone(next[1:]), added)
	if err := update(next2, Delta{Changed: []int{99}, Removed: []string{"s0"}}); err != nil {
		t.Fatal(err)
	}
	c = fp.calls[len(fp.calls)-1]
	if len(c.Upsert) != 1 || c.Upsert[0].Service.Name != "s100" || len(c.Remove) != 1 || c.Remove[0] != ss[0].Key() {
		t.Fatalf("one removed, one added: %d upserts, removals %v", len(c.Upsert), c.Remove)
	}

	// Refused before the data plane is asked: a key another service
	// keeps, a name twice, a delta that does not cover the change.
	before, _ := m.Services(ServiceQuery{})
	n := calls()
	thief := slices.Clone(next2)
	thief[5].VIP, thief[5].Port = thief[6].VIP, thief[6].Port
	dup := slices.Clone(next2)
	dup[5].Name = dup[6].Name
	for name, tc := range map[string]struct {
		ss []Service
		d  Delta
	}{
		"key of another": {thief, Delta{Changed: []int{5}}},
		"name twice":     {dup, Delta{Changed: []int{5, 6}}},
		"uncovered":      {next2[1:], Delta{}},
		"out of range":   {next2, Delta{Changed: []int{100}}},
	} {
		if err := update(tc.ss, tc.d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if calls() != n {
		t.Fatal("a refused delta reached the data plane")
	}
	// Refused by the data plane: nothing changes.
	fp.fail = errors.New("boom")
	moved := slices.Clone(next2)
	moved[3].Port = 99
	if err := update(moved, Delta{Changed: []int{3}}); err == nil {
		t.Fatal("a refused change was reported applied")
	}
	fp.fail = nil
	after, _ := m.Services(ServiceQuery{})
	if !slices.EqualFunc(before.Services, after.Services, func(a, b ServiceStatus) bool { return a.Name == b.Name && a.Port == b.Port }) {
		t.Fatal("a refused change changed the services")
	}

	// The same as Apply: a fresh manager given next2 lists the same.
	m2 := newManagerWith(t, &fakePlane{}, "")
	apply(t, m2, next2...)
	want, _ := m2.Services(ServiceQuery{})
	got, _ := m.Services(ServiceQuery{})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after updates:\n%v\nApply of the same:\n%v", got, want)
	}
	if !slices.Equal(m.Serving(), m2.Serving()) {
		t.Fatal("serving VIPs differ from Apply's")
	}
}

// The serving VIPs are published when the set changes, not when a VIP
// leaves and comes back within one change (a service moved to another
// port).
func TestServingPublishedOnChange(t *testing.T) {
	var published [][]netip.Addr
	m, err := New(context.Background(), Options{OnServing: func(v []netip.Addr) { published = append(published, v) }, Dataplane: &fakePlane{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ss := manyServices(10)
	apply(t, m, ss...)
	if len(published) != 1 || len(published[0]) != 10 {
		t.Fatalf("the first Apply published %v", published)
	}
	moved := slices.Clone(ss)
	moved[4].Port = 8080
	if err := m.Update(Config{Services: moved, MaglevTableSize: testCap}, Delta{Changed: []int{4}}); err != nil {
		t.Fatal(err)
	}
	if len(published) != 1 {
		t.Fatalf("moving a port published %v", published[1:])
	}
	if err := m.Update(Config{Services: moved[:9], MaglevTableSize: testCap}, Delta{Removed: []string{"s9"}}); err != nil {
		t.Fatal(err)
	}
	if len(published) != 2 || len(published[1]) != 9 || slices.Contains(published[1], ss[9].VIP) {
		t.Fatalf("removing a VIP published %v", published[1:])
	}
}
