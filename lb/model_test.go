package lb

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
	"github.com/aird-net/aird/lb/health"
)

// modelSvc is one service as the model test believes it is configured.
type modelSvc struct {
	s      Service
	usable []bool
}

func (m *modelSvc) clone() *modelSvc {
	c := &modelSvc{s: m.s, usable: slices.Clone(m.usable)}
	c.s.Backends, c.s.AllowSources = slices.Clone(m.s.Backends), slices.Clone(m.s.AllowSources)
	return c
}

func (m *modelSvc) upsert() Upsert {
	c := m.clone()
	return Upsert{Service: &c.s, Usable: c.usable}
}

// modelRun drives a Programmer with random changes over a small universe
// (6 VIP addresses × 2 ports, 10 backend addresses, weights 0, 1 and 100)
// and checks the maps and the programmer's accounting after every step.
type modelRun struct {
	t   *testing.T
	rng *rand.Rand
	lm  bpf.LBMaps
	p   *Programmer
	ids *IDs
	cfg map[ServiceKey]*modelSvc
	dir string // TableDir: tables pinned; "": handles kept
	// adopted are the map ids of the tables the programmer adopted: the
	// only ones it may use without a handle or a pin
	adopted map[uint64]bool
	keys    []ServiceKey // the universe of service keys
	log     []string     // the steps so far, for a failure's report
	// what the run exercised
	steps, full, moves, restarts, sharedSteps int
}

var (
	modelWeights = []uint32{0, 1, 100}
	modelAllow   = [][]netip.Prefix{nil, {netip.MustParsePrefix("fd00:9::/32")},
		{netip.MustParsePrefix("fd00:9::/32"), netip.MustParsePrefix("fd00:8:1::/48")}}
)

func newModelRun(t *testing.T, seed uint64, pinned bool) *modelRun {
	r := &modelRun{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), cfg: map[ServiceKey]*modelSvc{},
		lm: loadMapsWith(t, bpf.Config{MaxVIPs: 64, MaxBackends: 64, ConntrackSize: 1024})}
	if pinned {
		r.dir = testutil.TempPinPath(t)
	}
	r.adopt()
	for i := range 6 {
		for _, port := range []int{80, 443} {
			s := modelService(i, port)
			r.keys = append(r.keys, s.Key())
		}
	}
	return r
}

// adopt starts a programmer on the maps, as at a (re)start.
func (r *modelRun) adopt() {
	r.p = NewProgrammer(r.lm, ProgrammerOptions{TableDir: r.dir})
	r.ids = NewIDs(r.p.Limits())
	if _, err := r.p.Adopt(r.ids); err != nil {
		r.fail("adopt: %v", err)
	}
	r.adopted = map[uint64]bool{}
	for _, s := range r.p.svcs {
		if s.table != nil {
			r.adopted[s.table.id] = true
		}
	}
}

func modelService(vip, port int) Service {
	return Service{Name: fmt.Sprintf("v%d-%d", vip, port), VIP: netip.AddrFrom16([16]byte{0xfd, 0, 0, 3, 15: byte(1 + vip)}),
		Port: port, Protocol: "tcp", HealthCheck: HealthCheck{Type: health.TypeNone}}
}

func modelBackend(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfd, 0, 0, 2, 15: byte(1 + i)})
}

func (r *modelRun) logf(format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf(format, args...))
}

// randomBackends returns 0-4 distinct backends with random weights and
// usable flags.
func (r *modelRun) randomBackends(m *modelSvc) {
	m.s.Backends, m.usable = nil, nil
	for _, i := range r.rng.Perm(10)[:r.rng.IntN(5)] {
		m.s.Backends = append(m.s.Backends, Backend{Address: modelBackend(i), Weight: modelWeights[r.rng.IntN(3)]})
		m.usable = append(m.usable, r.rng.IntN(4) != 0)
	}
}

func (r *modelRun) configured() []ServiceKey {
	ks := slices.Collect(maps.Keys(r.cfg))
	slices.SortFunc(ks, func(a, b ServiceKey) int {
		return cmp.Or(a.VIP.Compare(b.VIP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto))
	})
	return ks
}

func (r *modelRun) pick(ks []ServiceKey) ServiceKey { return ks[r.rng.IntN(len(ks))] }

// mutate changes the configuration once and returns the keys it touched.
func (r *modelRun) mutate() []ServiceKey {
	conf := r.configured()
	k := r.pick(r.keys)
	m := r.cfg[k]
	switch op := r.rng.IntN(7); {
	case m == nil: // add, with a random set or a copy of another's (a shared table)
		i := slices.Index(r.keys, k)
		m = &modelSvc{s: modelService(i/2, []int{80, 443}[i%2])}
		if len(conf) > 0 && r.rng.IntN(2) == 0 {
			o := r.cfg[r.pick(conf)]
			m.s.Backends, m.usable = slices.Clone(o.s.Backends), slices.Clone(o.usable)
			r.logf("add %v with the set of %v", k, o.s.Key())
		} else {
			r.randomBackends(m)
			r.logf("add %v %v", k, m.s.Backends)
		}
		r.cfg[k] = m
	case op == 0: // remove
		delete(r.cfg, k)
		r.logf("remove %v", k)
	case op == 1: // new random set
		r.randomBackends(m)
		r.logf("set %v %v usable %v", k, m.s.Backends, m.usable)
	case op == 2 && len(conf) > 1: // become identical to another
		o := r.cfg[r.pick(conf)]
		m.s.Backends, m.usable = slices.Clone(o.s.Backends), slices.Clone(o.usable)
		r.logf("copy %v <- %v", k, o.s.Key())
	case op == 3 && len(m.s.Backends) > 0: // move a backend to another service
		o := r.cfg[r.pick(conf)]
		i := r.rng.IntN(len(m.s.Backends))
		b := m.s.Backends[i]
		if o == m || slices.ContainsFunc(o.s.Backends, func(x Backend) bool { return x.Address == b.Address }) {
			return nil
		}
		m.s.Backends, m.usable = slices.Delete(m.s.Backends, i, i+1), slices.Delete(m.usable, i, i+1)
		o.s.Backends, o.usable = append(o.s.Backends, b), append(o.usable, true)
		r.logf("move %v from %v to %v", b.Address, k, o.s.Key())
		r.moves++
		return []ServiceKey{k, o.s.Key()}
	case op == 4 && len(m.usable) > 0: // flip a usable flag
		i := r.rng.IntN(len(m.usable))
		m.usable[i] = !m.usable[i]
		r.logf("flip %v %v -> %v", k, m.s.Backends[i].Address, m.usable[i])
	case op == 6: // allow sources
		m.s.AllowSources = slices.Clone(modelAllow[r.rng.IntN(len(modelAllow))])
		r.logf("allow %v %v", k, m.s.AllowSources)
	case op == 5 && len(m.s.Backends) > 0: // change a weight
		i := r.rng.IntN(len(m.s.Backends))
		m.s.Backends[i].Weight = modelWeights[r.rng.IntN(3)]
		r.logf("weight %v %v -> %d", k, m.s.Backends[i].Address, m.s.Backends[i].Weight)
	default:
		return nil
	}
	return []ServiceKey{k}
}

// step makes a few mutations and programs them as one change, full or
// incremental, upserts in random order.
func (r *modelRun) step() {
	touched := map[ServiceKey]bool{}
	for range 1 + r.rng.IntN(4) {
		for _, k := range r.mutate() {
			touched[k] = true
		}
	}
	full := r.rng.IntN(3) == 0
	var ch Change
	ch.Full = full
	if full {
		for _, k := range r.configured() {
			ch.Upsert = append(ch.Upsert, r.cfg[k].upsert())
		}
	} else {
		for _, k := range r.sorted(touched) {
			if m := r.cfg[k]; m != nil {
				ch.Upsert = append(ch.Upsert, m.upsert())
			} else {
				ch.Remove = append(ch.Remove, k)
			}
		}
	}
	r.rng.Shuffle(len(ch.Upsert), func(i, j int) { ch.Upsert[i], ch.Upsert[j] = ch.Upsert[j], ch.Upsert[i] })
	order := make([]string, len(ch.Upsert))
	for i, u := range ch.Upsert {
		order[i] = u.Service.Name
	}
	r.logf("program full=%v upsert %v remove %v", full, order, ch.Remove)
	r.steps++
	if full {
		r.full++
	}
	res := r.program(ch)
	for _, u := range ch.Upsert {
		if got, want := res[u.Service.Key()], usableCount(u); got != want {
			r.fail("Program reports %d usable backends for %v, want %d", got, u.Service.Key(), want)
		}
	}
}

func (r *modelRun) sorted(set map[ServiceKey]bool) []ServiceKey {
	var out []ServiceKey
	for _, k := range r.keys {
		if set[k] {
			out = append(out, k)
		}
	}
	return out
}

func usableCount(u Upsert) uint32 {
	var n uint32
	for i, b := range u.Service.Backends {
		if u.Usable[i] && b.Weight > 0 {
			n++
		}
	}
	return n
}

func (r *modelRun) program(ch Change) map[ServiceKey]uint32 {
	ch.TableSize = testCap
	res, err := r.p.Program(ch)
	if err != nil {
		r.fail("program: %v", err)
	}
	return res
}

func (r *modelRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s\nsteps:\n  %s", fmt.Sprintf(format, args...), joinLines(r.log))
}

func joinLines(ls []string) string {
	if len(ls) > 60 {
		ls = append([]string{fmt.Sprintf("... %d earlier", len(ls)-60)}, ls[len(ls)-60:]...)
	}
	out := ""
	for i, l := range ls {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

// restart adopts the maps with a fresh programmer and gives it the same
// configuration: the maps must not change.
func (r *modelRun) restart() {
	before := snap(r.t, r.lm)
	r.adopt()
	r.restarts++
	ch := Change{Full: true}
	for _, k := range r.configured() {
		ch.Upsert = append(ch.Upsert, r.cfg[k].upsert())
	}
	r.logf("restart, program full %d services", len(ch.Upsert))
	r.program(ch)
	if after := snap(r.t, r.lm); !after.equal(before) {
		r.fail("a restart with the same configuration changed the maps: %v before, %v after", before, after)
	}
}

// check compares the maps and the programmer's accounting with the model.
func (r *modelRun) check() {
	r.t.Helper()
	s := snap(r.t, r.lm)
	r.checkEntries(s)
	r.checkAllow(s)
	r.checkBackends(s)
	for _, k := range r.configured() {
		r.checkTable(s, r.cfg[k])
	}
	r.checkRefs()
}

// checkEntries: one service entry per configured service with its vip id,
// an address entry per address in use and a fragments entry carrying the
// vip id of the lowest port.
func (r *modelRun) checkEntries(s snapshot) {
	want := map[bpf.DatapathVipKey]bool{}
	lowest := map[netip.Addr]ServiceKey{}
	for _, k := range r.configured() {
		vid, ok := r.ids.VIP(k)
		if !ok {
			r.fail("no vip id for configured %v", k)
		}
		bk := bpf.VIPKey(k.VIP, k.Proto, k.Port)
		want[bk] = true
		if v, ok := s.vips[bk]; !ok || v.VipId != vid || v.Flags != allowFlag(r.cfg[k]) {
			r.fail("vips entry of %v: %+v (present %v), want vip id %d flags %#x", k, v, ok, vid, allowFlag(r.cfg[k]))
		}
		want[bpf.VIPKey(k.VIP, 0, 0)] = true
		if l, ok := lowest[k.VIP]; !ok || k.Port < l.Port {
			lowest[k.VIP] = k
		}
	}
	for a, k := range lowest {
		fk := bpf.VIPKey(a, k.Proto, 0)
		want[fk] = true
		vid, _ := r.ids.VIP(k)
		flags := uint32(bpf.DatapathVipFlagsVIP_F_FRAGMENTS_ONLY) | allowFlag(r.cfg[k])
		if v, ok := s.vips[fk]; !ok || v.VipId != vid || v.Flags != flags {
			r.fail("fragments entry of %v: %+v (present %v), want vip id %d of %v", a, v, ok, vid, k)
		}
	}
	for k := range s.vips {
		if !want[k] {
			r.fail("vips entry %+v for nothing configured", k)
		}
	}
}

func allowFlag(m *modelSvc) uint32 {
	if len(m.s.AllowSources) > 0 {
		return uint32(bpf.DatapathVipFlagsVIP_F_ALLOWLIST)
	}
	return 0
}

// checkAllow: the allow lists are those of the configured services, by
// vip id, and the programmer counts their entries.
func (r *modelRun) checkAllow(s snapshot) {
	want := map[uint32][]netip.Prefix{}
	n := 0
	for k, m := range r.cfg {
		if len(m.s.AllowSources) > 0 {
			vid, _ := r.ids.VIP(k)
			want[vid] = m.s.AllowSources
			n += len(m.s.AllowSources)
		}
	}
	if !(snapshot{allow: want}).equal(snapshot{allow: s.allow}) {
		r.fail("allow lists %v, want %v", s.allow, want)
	}
	if r.p.allowN != n {
		r.fail("the programmer counts %d allow entries, the services have %d", r.p.allowN, n)
	}
}

// checkBackends: the backends map holds exactly the addresses some
// configured service lists, under their ids.
func (r *modelRun) checkBackends(s snapshot) {
	want := map[netip.Addr]bool{}
	for _, m := range r.cfg {
		for _, b := range m.s.Backends {
			want[b.Address] = true
		}
	}
	got := map[netip.Addr]bool{}
	for id, be := range s.backends {
		a := netip.AddrFrom16(be.Addr)
		if !want[a] {
			r.fail("backends[%d] = %s, which no configured service lists", id, a)
		}
		if x, ok := r.ids.Backend(a); !ok || x != id {
			r.fail("backends[%d] = %s, whose id is %d (%v)", id, a, x, ok)
		}
		got[a] = true
	}
	for a := range want {
		if !got[a] {
			r.fail("no backends entry for %s, listed by a configured service", a)
		}
	}
}

// checkTable: a service's installed table gives slots only to its usable
// backends of weight > 0, each with an entry, and to all of them when the
// table is big enough (size ≥ total weight / least weight).
func (r *modelRun) checkTable(s snapshot, m *modelSvc) {
	k := m.s.Key()
	vid, _ := r.ids.VIP(k)
	if _, ok := s.tables[vid]; !ok {
		r.fail("no table installed for %v (vip id %d)", k, vid)
	}
	tbl := kernelTable(r.t, r.lm, vid)
	allowed := map[uint32]netip.Addr{}
	var total, least uint64
	for i, b := range m.s.Backends {
		if !m.usable[i] || b.Weight == 0 {
			continue
		}
		id, ok := r.ids.Backend(b.Address)
		if !ok {
			r.fail("no id for backend %s of %v", b.Address, k)
		}
		allowed[id] = b.Address
		total += uint64(b.Weight)
		if least == 0 || uint64(b.Weight) < least {
			least = uint64(b.Weight)
		}
	}
	got := shares(tbl)
	for id, n := range got {
		if id == 0 {
			continue
		}
		a, ok := allowed[id]
		if !ok {
			r.fail("%v's table gives %d slots to backend id %d, not a usable backend of weight > 0 of it (%v)", k, n, id, m.s.Backends)
		}
		be, ok := s.backends[id]
		if !ok || netip.AddrFrom16(be.Addr) != a {
			r.fail("%v's table gives %d slots to backend id %d (%s), whose entry is %+v (present %v)", k, n, id, a, be, ok)
		}
	}
	if len(allowed) > 0 && uint64(len(tbl))*least >= total {
		for id, a := range allowed {
			if got[id] == 0 {
				r.fail("%v's table of %d slots gives none to %s (id %d)", k, len(tbl), a, id)
			}
		}
	}
	if len(allowed) == 0 && len(got) > 0 && (len(got) > 1 || got[0] == 0) {
		r.fail("%v has no usable backend but its table gives slots: %v", k, got)
	}
}

// checkRefs: the programmer's reference counts are those of its services.
func (r *modelRun) checkRefs() {
	p := r.p
	if len(p.svcs) != len(r.cfg) {
		r.fail("the programmer has %d services, the model %d", len(p.svcs), len(r.cfg))
	}
	be := map[uint32]int{}
	refs := map[*table]int{}
	for k, s := range p.svcs {
		if r.cfg[k] == nil {
			r.fail("the programmer has %v, not configured", k)
		}
		for _, id := range s.backends {
			be[id]++
		}
		if s.table != nil {
			refs[s.table]++
		}
	}
	if !maps.Equal(be, p.beRefs) {
		r.fail("beRefs %v, the services use %v", p.beRefs, be)
	}
	shared := false
	for t, n := range refs {
		shared = shared || n > 1
		if r.dir != "" && !t.pinned {
			r.fail("table %x in use is not pinned", t.key[:4])
		}
		if !t.shareable() && !r.adopted[t.id] {
			r.fail("table %x in use, built by this programmer, has neither a handle nor a pin (released)", t.key[:4])
		}
		if t.refs != n {
			r.fail("table %x has refs %d, used by %d services", t.key[:4], t.refs, n)
		}
		if t.shareable() && p.shared[t.key] != t {
			r.fail("shareable table %x in use is not the shared one of its digest", t.key[:4])
		}
	}
	for key, t := range p.shared {
		if t.key != key || refs[t] == 0 || !t.shareable() {
			r.fail("shared[%x]: key %x, used by %d services, shareable %v", key[:4], t.key[:4], refs[t], t.shareable())
		}
	}
	if shared {
		r.sharedSteps++
	}
	r.checkPins(refs)
}

// checkPins: with a TableDir, the pins are those of the tables in use.
func (r *modelRun) checkPins(refs map[*table]int) {
	if r.dir == "" {
		return
	}
	want := map[string]bool{}
	for t := range refs {
		want[filepath.Base(r.p.pinPath(t.key))] = true
	}
	es, err := os.ReadDir(r.dir)
	if err != nil && !os.IsNotExist(err) {
		r.fail("read the table pins: %v", err)
	}
	got := map[string]bool{}
	for _, e := range es {
		got[e.Name()] = true
	}
	if !maps.Equal(got, want) {
		r.fail("table pins %v, tables in use %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

// TestProgrammerModel programs random sequences of changes (full and
// incremental; backends moving between services, services removed and
// added again, backend sets becoming identical and different, usable
// flags, weights and allow lists changing, restarts) and checks the maps and the
// programmer's accounting against the configuration after every step.
//
// Each seed runs twice: tables kept by handles, and pinned in a TableDir
// (as the daemon runs: a restart adopts the pins, and shares them).
func TestProgrammerModel(t *testing.T) {
	for _, pinned := range []bool{false, true} {
		for _, seed := range []uint64{1, 2, 3, 4, 5, 6} {
			t.Run(fmt.Sprintf("pinned=%v/seed=%d", pinned, seed), func(t *testing.T) {
				r := newModelRun(t, seed, pinned)
				for range 120 {
					r.step()
					r.check()
					if r.rng.IntN(20) == 0 {
						r.restart()
						r.check()
					}
				}
				t.Logf("%d changes (%d full), %d backend moves, %d restarts, %d steps with a table shared",
					r.steps, r.full, r.moves, r.restarts, r.sharedSteps)
			})
		}
	}
}
