package lb

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
	"github.com/aird-net/aird/lb/health"
)

// testCap caps the tables of these tests: small tables, quick builds.
const testCap = 1021

func loadMaps(t testing.TB) bpf.LBMaps {
	t.Helper()
	return loadMapsWith(t, bpf.Config{MaxVIPs: 1024, MaxBackends: 1024, ConntrackSize: 4096})
}

func loadMapsWith(t testing.TB, cfg bpf.Config) bpf.LBMaps {
	t.Helper()
	testutil.RequirePrivileged(t)
	objs, err := bpf.LoadObjects(cfg, nil)
	if err != nil {
		t.Fatalf("load datapath: %v", err)
	}
	t.Cleanup(func() { objs.Close() })
	return objs.LB
}

// newProgrammer returns a programmer that adopted maps.
func newProgrammer(t testing.TB, maps bpf.LBMaps) (*Programmer, *IDs, Adopted) {
	t.Helper()
	p := NewProgrammer(maps, ProgrammerOptions{})
	ids := NewIDs(p.Limits())
	a, err := p.Adopt(ids)
	if err != nil {
		t.Fatal(err)
	}
	return p, ids, a
}

func svc(backends ...string) Service {
	s := Service{Name: "web", VIP: netip.MustParseAddr("fd00:300::10"), Port: 443, Protocol: "tcp",
		HealthCheck: HealthCheck{Type: health.TypeNone}}
	for _, b := range backends {
		s.Backends = append(s.Backends, Backend{Address: netip.MustParseAddr(b), Weight: 100})
	}
	return s
}

// allUsable programs services with every backend usable.
func allUsable(ss ...Service) []Upsert {
	out := make([]Upsert, len(ss))
	for i := range ss {
		out[i] = Upsert{Service: &ss[i], Usable: usable(&ss[i], func(netip.Addr) bool { return true })}
	}
	return out
}

func usable(s *Service, f func(netip.Addr) bool) []bool {
	u := make([]bool, len(s.Backends))
	for i, b := range s.Backends {
		u[i] = f(b.Address)
	}
	return u
}

func mustProgram(t testing.TB, p *Programmer, ch Change) map[ServiceKey]uint32 {
	t.Helper()
	if ch.TableSize == 0 {
		ch.TableSize = testCap
	}
	res, err := p.Program(ch)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func vipEntry(t testing.TB, maps bpf.LBMaps, addr string, proto uint8, port uint16) (bpf.DatapathVipValue, bool) {
	t.Helper()
	k := bpf.VIPKey(netip.MustParseAddr(addr), proto, port)
	var v bpf.DatapathVipValue
	err := maps.Vips.Lookup(&k, &v)
	return v, err == nil
}

// kernelTable reads the Maglev table the kernel holds for vid, as backend
// ids per slot.
func kernelTable(t testing.TB, maps bpf.LBMaps, vid uint32) []uint32 {
	t.Helper()
	tab, err := bpf.NewLB(maps).ReadTable(vid)
	if err != nil {
		t.Fatal(err)
	}
	return tab.IDs()
}

// tableID returns the map id of the table installed for vid.
func tableID(t testing.TB, maps bpf.LBMaps, vid uint32) ebpf.MapID {
	t.Helper()
	var id ebpf.MapID
	if err := maps.Maglev.Lookup(vid, &id); err != nil {
		t.Fatalf("maglev[%d]: %v", vid, err)
	}
	return id
}

// shares counts the Maglev slots per backend id.
func shares(tbl []uint32) map[uint32]int {
	m := map[uint32]int{}
	for _, id := range tbl {
		m[id]++
	}
	return m
}

// snapshot is every entry of the lb maps a change may write, for
// comparing the data plane before and after a refused change.
type snapshot struct {
	vips     map[bpf.DatapathVipKey]bpf.DatapathVipValue
	backends map[uint32]bpf.DatapathBackend
	tables   map[uint32]ebpf.MapID
	meta     map[uint32]bpf.DatapathTableMeta
	allow    map[uint32][]netip.Prefix
}

func snap(t testing.TB, maps bpf.LBMaps) snapshot {
	t.Helper()
	l := bpf.NewLB(maps)
	s := snapshot{vips: map[bpf.DatapathVipKey]bpf.DatapathVipValue{}, backends: map[uint32]bpf.DatapathBackend{}}
	var k bpf.DatapathVipKey
	var v bpf.DatapathVipValue
	it := maps.Vips.Iterate()
	for it.Next(&k, &v) {
		s.vips[k] = v
	}
	var be bpf.DatapathBackend
	for id := uint32(0); id < maps.Backends.MaxEntries(); id++ {
		if err := maps.Backends.Lookup(id, &be); err == nil && be.Flags != 0 {
			s.backends[id] = be
		}
	}
	var err error
	if s.tables, err = l.InstalledTables(); err != nil {
		t.Fatal(err)
	}
	if s.meta, err = l.TableMetas(); err != nil {
		t.Fatal(err)
	}
	if err := l.VerifyVIPSets(); err != nil {
		t.Fatalf("vip_sets differs from vips: %v", err)
	}
	if s.allow, err = l.Allowed(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (a snapshot) equal(b snapshot) bool {
	return maps.Equal(a.vips, b.vips) && maps.Equal(a.backends, b.backends) && maps.Equal(a.tables, b.tables) &&
		maps.Equal(a.meta, b.meta) && maps.EqualFunc(a.allow, b.allow, func(x, y []netip.Prefix) bool {
		return len(x) == len(y) && !slices.ContainsFunc(x, func(p netip.Prefix) bool { return !slices.Contains(y, p) })
	})
}

func (a snapshot) String() string {
	return fmt.Sprintf("%d vips entries, %d backends, %d tables, %d table records, %d allow lists",
		len(a.vips), len(a.backends), len(a.tables), len(a.meta), len(a.allow))
}

// manyServices returns n services on distinct VIPs, each with 3 of 5
// backends: five distinct backend sets, so tables are shared.
func manyServices(n int) []Service {
	out := make([]Service, n)
	for i := range out {
		s := Service{Name: fmt.Sprintf("s%d", i), VIP: netip.AddrFrom16([16]byte{0xfd, 0, 3, 0, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}),
			Port: 80, Protocol: "tcp", HealthCheck: HealthCheck{Type: health.TypeNone}}
		for j := range 3 {
			b := fmt.Sprintf("fd00:2::%d", 1+(i+j)%5)
			s.Backends = append(s.Backends, Backend{Address: netip.MustParseAddr(b), Weight: 100})
		}
		out[i] = s
	}
	return out
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within 10s", what)
}

// fakePlane is a Dataplane that assigns ids like a Programmer and counts
// what it is asked to program, without maps.
type fakePlane struct {
	mu    sync.Mutex
	ids   *IDs
	calls []Change
	fail  error
}

func (f *fakePlane) Limits() Limits {
	return Limits{MaxVIPs: 1000, MaxBackends: 1000, VIPEntries: 3000, AllowEntries: 1000}
}

func (f *fakePlane) Adopt(ids *IDs) (Adopted, error) { f.ids = ids; return Adopted{}, nil }

func (f *fakePlane) Program(ch Change) (map[ServiceKey]uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.calls = append(f.calls, ch)
	res := map[ServiceKey]uint32{}
	for _, u := range ch.Upsert {
		if _, ok := f.ids.VIP(u.Service.Key()); !ok {
			if _, err := f.ids.takeVIP(u.Service.Key()); err != nil {
				return nil, err
			}
		}
		for i, b := range u.Service.Backends {
			if _, ok := f.ids.Backend(b.Address); !ok {
				if _, err := f.ids.takeBackend(b.Address); err != nil {
					return nil, err
				}
			}
			if u.Usable[i] && b.Weight > 0 {
				res[u.Service.Key()]++
			}
		}
	}
	for _, k := range ch.Remove {
		f.ids.releaseVIP(k)
	}
	return res, nil
}

func (f *fakePlane) upserts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, c := range f.calls {
		out = append(out, len(c.Upsert))
	}
	return out
}
