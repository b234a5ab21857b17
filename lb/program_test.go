package lb

import (
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

func TestProgrammerFollowsServicesAndHealth(t *testing.T) {
	maps := loadMaps(t)
	p, ids, _ := newProgrammer(t, maps)
	s := svc("fd00:100::1", "fd00:100::2", "fd00:100::3")
	mustProgram(t, p, Change{Upsert: allUsable(s), Full: true})
	sv, ok := vipEntry(t, maps, "fd00:300::10", 6, 443)
	if !ok {
		t.Fatal("service entry missing from vips")
	}
	if a, ok := vipEntry(t, maps, "fd00:300::10", 0, 0); !ok || a.VipId != bpf.VIPIDNone {
		t.Fatalf("address entry %+v (present %v), want one without a vip id", a, ok)
	}
	tbl := kernelTable(t, maps, sv.VipId)
	if want := TableSize(3, testCap); len(tbl) != int(want) {
		t.Fatalf("table of %d slots, want %d for 3 backends", len(tbl), want)
	}
	sh := shares(tbl)
	if len(sh) != 3 || sh[0] != 0 {
		t.Fatalf("table shares %v: want 3 backends and no empty slot", sh)
	}
	for id, n := range sh {
		if n < len(tbl)/3-1 || n > len(tbl)/3+1 {
			t.Errorf("backend %d has %d of %d slots", id, n, len(tbl))
		}
	}

	// An unhealthy backend leaves the table but keeps its id and entry.
	bad := netip.MustParseAddr("fd00:100::2")
	badID, _ := ids.Backend(bad)
	res := mustProgram(t, p, Change{Upsert: []Upsert{{Service: &s, Usable: usable(&s, func(a netip.Addr) bool { return a != bad })}}})
	if n := shares(kernelTable(t, maps, sv.VipId))[badID]; n != 0 {
		t.Fatalf("unhealthy backend still has %d slots", n)
	}
	if res[s.Key()] != 2 {
		t.Fatalf("usable backends = %d, want 2", res[s.Key()])
	}
	var be bpf.DatapathBackend
	if err := maps.Backends.Lookup(badID, &be); err != nil || be.Flags&uint32(bpf.DatapathBackendFlagsBACKEND_F_VALID) == 0 {
		t.Fatal("an unhealthy backend lost its entry: its established flows would break")
	}

	// Removing a backend frees its entry; a new backend gets a fresh id.
	s2 := svc("fd00:100::1", "fd00:100::3", "fd00:100::4")
	mustProgram(t, p, Change{Upsert: allUsable(s2)})
	if err := maps.Backends.Lookup(badID, &be); err != nil || be.Flags != 0 {
		t.Fatalf("removed backend %d still valid", badID)
	}
	if id, _ := ids.Backend(netip.MustParseAddr("fd00:100::4")); id == badID || id == 0 {
		t.Fatalf("new backend got id %d (the freed id was %d): ids must not be reused at once", id, badID)
	}

	// A restart adopts the ids and the table from the maps: the same
	// configuration rewrites nothing.
	before := snap(t, maps)
	p2, ids2, a := newProgrammer(t, maps)
	if a.Services != 1 || a.Tables != 1 || a.Backends != 3 {
		t.Fatalf("adopted %+v, want 1 service with its table and 3 backends", a)
	}
	for _, b := range s2.Backends {
		want, _ := ids.Backend(b.Address)
		if got, _ := ids2.Backend(b.Address); got != want {
			t.Errorf("after restart backend %s has id %d, was %d", b.Address, got, want)
		}
	}
	mustProgram(t, p2, Change{Upsert: allUsable(s2), Full: true})
	if after := snap(t, maps); !after.equal(before) {
		t.Fatalf("a restart with the same configuration changed the data plane:\n before %s\n after  %s", before, after)
	}

	// Allow lists set the flag; removing the service removes its entries.
	s2.AllowSources = []netip.Prefix{netip.MustParsePrefix("fd00::/8")}
	mustProgram(t, p2, Change{Upsert: allUsable(s2)})
	if v, _ := vipEntry(t, maps, "fd00:300::10", 6, 443); v.Flags&uint32(bpf.DatapathVipFlagsVIP_F_ALLOWLIST) == 0 {
		t.Fatal("allow-sources did not set VIP_F_ALLOWLIST")
	}
	mustProgram(t, p2, Change{Full: true})
	if st := snap(t, maps); len(st.vips)+len(st.backends)+len(st.tables)+len(st.meta)+len(st.allow) != 0 {
		t.Fatalf("entries left after every service was removed: %s", st)
	}
	if ids2.FreeVIPs() != int(p2.Limits().MaxVIPs) || ids2.FreeBackends() != int(p2.Limits().MaxBackends) {
		t.Fatalf("ids left in use: %d vip ids, %d backend ids free", ids2.FreeVIPs(), ids2.FreeBackends())
	}
}

// Each service takes one vip id: the address entry and the fragments-only
// entries take none. The fragments entry carries the vip id of the
// lowest-port service of its protocol; a port-0 service replaces it.
func TestOneVIPIDPerService(t *testing.T) {
	maps := loadMaps(t)
	p, ids, _ := newProgrammer(t, maps)
	vip := "fd00:300::10"
	web := svc("fd00:2::1")
	dns := svc("fd00:2::1", "fd00:2::2")
	dns.Name, dns.Port, dns.Protocol = "dns", 53, "udp"
	dns2 := dns
	dns2.Name, dns2.Port = "dns2", 5353
	mustProgram(t, p, Change{Upsert: allUsable(web, dns2, dns), Full: true})
	if used := int(p.Limits().MaxVIPs) - ids.FreeVIPs(); used != 3 {
		t.Fatalf("%d vip ids for 3 services", used)
	}
	for _, c := range []struct {
		proto uint8
		port  uint16
		svc   Service
	}{{6, 0, web}, {17, 0, dns}} {
		frag, ok := vipEntry(t, maps, vip, c.proto, 0)
		id, _ := ids.VIP(c.svc.Key())
		if !ok || frag.Flags != uint32(bpf.DatapathVipFlagsVIP_F_FRAGMENTS_ONLY) || frag.VipId != id {
			t.Fatalf("fragments entry %d/0 = %+v (present %v), want the vip id %d of %s, fragments only", c.proto, frag, ok, id, c.svc.Name)
		}
	}

	all0 := dns
	all0.Name, all0.Port = "dns-any", 0
	mustProgram(t, p, Change{Upsert: allUsable(all0)})
	id0, _ := ids.VIP(all0.Key())
	if v, _ := vipEntry(t, maps, vip, 17, 0); v.Flags != 0 || v.VipId != id0 {
		t.Fatalf("with a port-0 service the entry is %+v, want vip id %d without flags", v, id0)
	}
	mustProgram(t, p, Change{Remove: []ServiceKey{all0.Key(), dns.Key()}})
	id2, _ := ids.VIP(dns2.Key())
	if v, _ := vipEntry(t, maps, vip, 17, 0); v.Flags != uint32(bpf.DatapathVipFlagsVIP_F_FRAGMENTS_ONLY) || v.VipId != id2 {
		t.Fatalf("after removing the port-0 and the lowest service the entry is %+v, want dns2's vip id %d, fragments only", v, id2)
	}
	mustProgram(t, p, Change{Full: true})
	if _, ok := vipEntry(t, maps, vip, 17, 0); ok {
		t.Fatal("port-0 entry left after its services were removed")
	}
}

// Services with the same weighted backends share one table; each table
// has the size of its backend count; a shared table survives while one
// of its services uses it.
func TestProgrammerSharesTables(t *testing.T) {
	maps := loadMaps(t)
	p, ids, _ := newProgrammer(t, maps)
	ss := manyServices(10) // five backend sets
	big := svc()
	big.Name, big.VIP = "big", netip.MustParseAddr("fd00:300::99")
	for i := range 40 {
		big.Backends = append(big.Backends, Backend{Address: netip.AddrFrom16([16]byte{0xfd, 0, 4, 15: byte(i + 1)}), Weight: 1})
	}
	mustProgram(t, p, Change{Upsert: allUsable(append(ss, big)...), Full: true, TableSize: 65537})
	if tables, services := p.Tables(); tables != 6 || services != 11 {
		t.Fatalf("%d tables for %d services, want 6 for 11", tables, services)
	}
	vid := func(s Service) uint32 { id, _ := ids.VIP(s.Key()); return id }
	if tableID(t, maps, vid(ss[0])) != tableID(t, maps, vid(ss[5])) {
		t.Fatal("services with the same backends have different tables")
	}
	if n := len(kernelTable(t, maps, vid(big))); n != int(TableSize(40, 65537)) || n < 40*DefaultSlotsPerBackend {
		t.Fatalf("a service of 40 backends has a table of %d slots, want %d", n, TableSize(40, 65537))
	}
	if n := len(kernelTable(t, maps, vid(ss[0]))); n != int(TableSize(3, 65537)) {
		t.Fatalf("a service of 3 backends has a table of %d slots, want %d", n, TableSize(3, 65537))
	}
	shared := tableID(t, maps, vid(ss[5]))
	mustProgram(t, p, Change{Remove: []ServiceKey{ss[0].Key()}, TableSize: 65537})
	if tableID(t, maps, vid(ss[5])) != shared {
		t.Fatal("removing one user of a shared table replaced the other's")
	}
	// A health change in one user gives it a table of its own.
	u := Upsert{Service: &ss[5], Usable: []bool{true, false, true}}
	mustProgram(t, p, Change{Upsert: []Upsert{u}, TableSize: 65537})
	if tableID(t, maps, vid(ss[5])) == shared {
		t.Fatal("a service whose health differs still shares the table")
	}
}

// A refused change leaves the data plane exactly as it was: ids beyond
// the limit are refused before anything is written, and a failure while
// writing (here: a table that cannot be built) is rolled back.
func TestProgrammerRefusedChangeChangesNothing(t *testing.T) {
	maps := loadMapsWith(t, bpf.Config{MaxVIPs: 8, MaxBackends: 8, ConntrackSize: 4096})
	p, ids, _ := newProgrammer(t, maps)
	ss := manyServices(4)
	// A first start that fails half-way leaves nothing programmed.
	if _, err := p.Program(Change{Upsert: allUsable(ss...), Full: true, TableSize: 300}); err == nil {
		t.Fatal("a first program with tables that cannot be built succeeded")
	}
	if st := snap(t, maps); len(st.vips)+len(st.backends)+len(st.tables)+len(st.meta)+len(st.allow) != 0 {
		t.Fatalf("a failed first program left entries: %s", st)
	}
	mustProgram(t, p, Change{Upsert: allUsable(ss...), Full: true})
	before := snap(t, maps)
	freeV, freeB := ids.FreeVIPs(), ids.FreeBackends()

	tooMany := manyServices(9)
	if _, err := p.Program(Change{Upsert: allUsable(tooMany...), Full: true, TableSize: testCap}); err == nil {
		t.Fatal("9 services on 8 vip ids accepted")
	} else {
		t.Logf("refused: %v", err)
	}
	changed := manyServices(6)
	for i := range changed {
		changed[i].Backends = append(changed[i].Backends, Backend{Address: netip.MustParseAddr("fd00:9::1"), Weight: 1})
		changed[i].AllowSources = []netip.Prefix{netip.MustParsePrefix("fd00:c::/64")}
	}
	// 300 caps the 4-backend tables (400 slots wanted) and is not prime:
	// the build fails after ids were taken and backends written.
	if _, err := p.Program(Change{Upsert: allUsable(changed...), Full: true, TableSize: 300}); err == nil {
		t.Fatal("a change with a table size that is not prime was accepted")
	} else {
		t.Logf("refused: %v", err)
	}
	if after := snap(t, maps); !after.equal(before) {
		t.Fatalf("a refused change altered the data plane:\n before %s\n after  %s", before, after)
	}
	if ids.FreeVIPs() != freeV || ids.FreeBackends() != freeB {
		t.Fatalf("a refused change kept ids: %d/%d vip ids free, was %d/%d", ids.FreeVIPs(), ids.FreeBackends(), freeV, freeB)
	}
	// The programmer still works.
	mustProgram(t, p, Change{Upsert: allUsable(changed...), Full: true})
	for _, s := range changed {
		id, _ := ids.VIP(s.Key())
		if got := shares(kernelTable(t, maps, id)); len(got) != 4 {
			t.Fatalf("%s: table over %d backends, want 4", s.Name, len(got))
		}
	}
}

// More services than one batch of table installs: every table the kernel
// holds is the one built for its service, on the first start and after a
// restart that adopts the tables (nothing rebuilt) and one that cannot
// (no records: every table rebuilt).
func TestProgrammerInstallsTablesInBatches(t *testing.T) {
	lm := loadMaps(t)
	ss := manyServices(bpf.TableBatch/2 + 7)
	check := func(name string, ids *IDs) {
		for _, s := range ss {
			id, ok := ids.VIP(s.Key())
			if !ok {
				t.Fatalf("%s: %s has no vip id", name, s.Name)
			}
			tbl := kernelTable(t, lm, id)
			if len(tbl) != int(TableSize(3, testCap)) || len(shares(tbl)) != 3 {
				t.Fatalf("%s: %s: table of %d slots over %d backends", name, s.Name, len(tbl), len(shares(tbl)))
			}
			for _, b := range s.Backends {
				bid, _ := ids.Backend(b.Address)
				if shares(tbl)[bid] == 0 {
					t.Fatalf("%s: %s: backend %s (id %d) has no slot", name, s.Name, b.Address, bid)
				}
			}
		}
	}
	p, ids, _ := newProgrammer(t, lm)
	mustProgram(t, p, Change{Upsert: allUsable(ss...), Full: true})
	check("first start", ids)
	tables := snap(t, lm).tables

	p, ids, _ = newProgrammer(t, lm)
	mustProgram(t, p, Change{Upsert: allUsable(ss...), Full: true})
	check("restart", ids)
	if got := snap(t, lm).tables; !maps.Equal(got, tables) {
		t.Fatal("a restart with the same configuration replaced tables")
	}

	l := bpf.NewLB(lm)
	for id := range tables {
		if err := l.SetTableMeta(id, bpf.DatapathTableMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	p, ids, _ = newProgrammer(t, lm)
	mustProgram(t, p, Change{Upsert: allUsable(ss...), Full: true})
	check("restart without table records", ids)
}

// With a table directory, tables are pinned by digest instead of held
// open: one pin per distinct table, shared again after a restart (a new
// service whose table equals an adopted one gets that table), unpinned
// with their last service; stale pins are removed at adoption.
func TestProgrammerPinsTables(t *testing.T) {
	lm := loadMaps(t)
	dir := testutil.TempPinPath(t)
	pins := func() int {
		es, _ := os.ReadDir(dir)
		return len(es)
	}
	newP := func() (*Programmer, *IDs) {
		p := NewProgrammer(lm, ProgrammerOptions{TableDir: dir})
		ids := NewIDs(p.Limits())
		if _, err := p.Adopt(ids); err != nil {
			t.Fatal(err)
		}
		return p, ids
	}
	ss := manyServices(10) // five distinct tables
	p, _ := newP()
	mustProgram(t, p, Change{Upsert: allUsable(ss[:9]...), Full: true})
	if n := pins(); n != 5 {
		t.Fatalf("%d table pins, want 5", n)
	}

	// Stale pins: a table no vip id holds, a map that is not a table
	// under a digest's name, a table under a name that is no digest.
	stale := func(name string, spec *ebpf.MapSpec) {
		m, err := ebpf.NewMap(spec)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Pin(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	table := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 13}
	stale(strings.Repeat("ab", 32), table)
	stale(strings.Repeat("cd", 32), &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	stale("not-a-digest", table)
	p, ids := newP()
	if n := pins(); n != 5 {
		t.Fatalf("%d table pins after adopting with 3 stale ones, want 5", n)
	}
	mustProgram(t, p, Change{Upsert: allUsable(ss...), Full: true}) // ss[9] is new, its table that of ss[4]
	vid := func(s Service) uint32 { id, _ := ids.VIP(s.Key()); return id }
	if tableID(t, lm, vid(ss[9])) != tableID(t, lm, vid(ss[4])) {
		t.Fatal("a new service did not share the adopted table equal to its own")
	}
	if n := pins(); n != 5 {
		t.Fatalf("%d table pins after the restart, want 5", n)
	}
	mustProgram(t, p, Change{Remove: []ServiceKey{ss[4].Key(), ss[9].Key()}})
	if n := pins(); n != 4 {
		t.Fatalf("%d table pins after removing the users of one table, want 4", n)
	}
	mustProgram(t, p, Change{Full: true})
	if n := pins(); n != 0 {
		t.Fatalf("%d table pins left without services", n)
	}
}

// Change.SlotsPerBackend sizes the tables the programmer writes to the
// kernel (lb.maglev-slots-per-backend).
func TestProgrammerSlotsPerBackend(t *testing.T) {
	maps := loadMaps(t)
	p, ids, _ := newProgrammer(t, maps)
	big := svc()
	for i := range 40 {
		big.Backends = append(big.Backends, Backend{Address: netip.AddrFrom16([16]byte{0xfd, 0, 4, 15: byte(i + 1)}), Weight: 1})
	}
	vid := func() uint32 { id, _ := ids.VIP(big.Key()); return id }
	mustProgram(t, p, Change{Upsert: allUsable(big), Full: true, TableSize: 65537, SlotsPerBackend: 200})
	z := Sizing{PerBackend: 200, Limit: 65537}
	if n, want := len(kernelTable(t, maps, vid())), z.Size(40); n != int(want) || n < 40*200 {
		t.Fatalf("40 backends at 200 slots each: a table of %d slots, want %d", n, want)
	}
	// The documented upper limit: 10,000 slots per backend meets the cap.
	mustProgram(t, p, Change{Upsert: allUsable(big), Full: true, TableSize: 65537, SlotsPerBackend: MaxSlotsPerBackend})
	if n := len(kernelTable(t, maps, vid())); n != 65537 {
		t.Fatalf("40 backends at %d slots each: a table of %d slots, want the cap 65537", MaxSlotsPerBackend, n)
	}
	mustProgram(t, p, Change{Upsert: allUsable(big), Full: true, TableSize: 65537})
	if n := len(kernelTable(t, maps, vid())); n != int(TableSize(40, 65537)) {
		t.Fatalf("40 backends at the default: a table of %d slots, want %d", n, TableSize(40, 65537))
	}
}

// vip_sets, the copy of vips the data path reads first, is rebuilt when a
// restarted programmer adopts the maps: from an empty new map (an upgrade
// that added it, or changed its size) as from a stale one, sets that
// overflowed included.
func TestProgrammerAdoptRebuildsVIPSets(t *testing.T) {
	lm := loadMapsWith(t, bpf.Config{MaxVIPs: 64, MaxBackends: 1024, ConntrackSize: 4096})
	ss := manyServices(60) // 120 vips entries in 128 sets of 4 ways
	p, _, _ := newProgrammer(t, lm)
	mustProgram(t, p, Change{Upsert: allUsable(ss...), Full: true})
	before := snap(t, lm)
	n := lm.VipSets.MaxEntries()
	keys := make([]uint32, n)
	for i := range keys {
		keys[i] = uint32(i)
	}
	empty := make([]bpf.DatapathVipSet, n)
	if _, err := lm.VipSets.BatchUpdate(keys, empty, nil); err != nil {
		t.Fatal(err)
	}
	if err := bpf.NewLB(lm).VerifyVIPSets(); err == nil {
		t.Fatal("an emptied vip_sets passes the check")
	}
	p, _, _ = newProgrammer(t, lm)
	mustProgram(t, p, Change{Upsert: allUsable(ss...), Full: true})
	if after := snap(t, lm); !after.equal(before) { // snap checks vip_sets
		t.Fatalf("restart changed the maps: %s, was %s", after, before)
	}
	used := 0
	if err := bpf.ReadArray(lm.VipSets, func(_ uint32, s *bpf.DatapathVipSet) {
		for _, w := range s.Way {
			if w.Key.Pad != 0 {
				used++
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if used == 0 {
		t.Fatal("vip_sets holds no entry after the restart")
	}
}

// A restart's plan carries table members only for the services whose
// table it builds (the others keep or share an adopted table and need
// only their digests), and the maps end as a fresh programmer leaves
// them: a changed service's table is built from its members, with the
// weights of its usable backends.
func TestRestartPlanBuildsOnlyChanges(t *testing.T) {
	lm := loadMaps(t)
	dir := testutil.TempPinPath(t)
	pinned := func() *Programmer {
		p := NewProgrammer(lm, ProgrammerOptions{TableDir: dir})
		if _, err := p.Adopt(NewIDs(p.Limits())); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ss := manyServices(6) // s5's table is s0's
	p := pinned()
	mustProgram(t, p, Change{Upsert: allUsable(ss[:5]...), Full: true})

	next := slices.Clone(ss)
	next[1].Backends = append(slices.Clone(next[1].Backends), Backend{Address: netip.MustParseAddr("fd00:2::9"), Weight: 100})
	next[2].Backends = slices.Clone(next[2].Backends)
	next[2].Backends[0].Weight = 50
	ups := allUsable(next...)
	ups[3].Usable[0] = false // health known: a backend down
	p2 := pinned()
	sets := p2.memberSets(ups, Sizing{})
	for i, m := range sets {
		if build := i == 1 || i == 2 || i == 3; (m.eff != nil) != build {
			t.Errorf("service %d: members carried %v, want %v", i, m.eff != nil, build)
		}
	}
	if w := sets[3].eff; len(w) != 3 || slices.IndexFunc(w, func(m member) bool { return m.weight == 0 }) < 0 {
		t.Errorf("service 3's members %v: want its unusable backend at weight 0", w)
	}
	mustProgram(t, p2, Change{Upsert: ups, Full: true})
	got := snap(t, lm)

	fresh := loadMaps(t)
	pf, _, _ := newProgrammer(t, fresh)
	mustProgram(t, pf, Change{Upsert: ups, Full: true})
	for i := range next {
		vid := func(p *Programmer) uint32 { return p.svcs[next[i].Key()].vid }
		if a, b := kernelTable(t, lm, vid(p2)), kernelTable(t, fresh, vid(pf)); !slices.Equal(shareIDs(t, p2, a), shareIDs(t, pf, b)) {
			t.Errorf("service %d: the restarted table differs from a fresh build", i)
		}
	}
	if len(got.tables) != 6 {
		t.Errorf("%d tables installed, want 6", len(got.tables))
	}
}

// shareIDs maps a table's backend ids to addresses, slot by slot, so
// tables of two programmers (ids taken in another order) compare.
func shareIDs(t *testing.T, p *Programmer, tbl []uint32) []netip.Addr {
	t.Helper()
	byID := map[uint32]netip.Addr{}
	for a, id := range p.ids.backendOf {
		byID[id] = a
	}
	out := make([]netip.Addr, len(tbl))
	for i, id := range tbl {
		out[i] = byID[id]
	}
	return out
}
