package lb

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/aird-net/aird/bpf"
)

// plan is a change worked out before anything is written: what every
// upserted service becomes, which tables to build, what to remove.
type plan struct {
	full   bool
	svcs   []*svcPlan
	remove []*progService
	next   map[ServiceKey]*progService // post-change state of the keys the change touches; nil: removed
	added  map[netip.Addr][]ServiceKey // keys the change adds, by VIP address
	builds []*build
	addrs  map[netip.Addr]bool // VIP addresses whose vips entries to reconcile
	usable map[ServiceKey]uint32
}

// svcPlan is one upserted service.
type svcPlan struct {
	old     *progService // nil: a new service
	ps      *progService // what it becomes
	fresh   bool         // ps.vid taken by this change
	build   *build       // its table is built by this change
	install bool         // maglev[vid] gets ps.table
	meta    bpf.DatapathTableMeta
}

// build is one table to build: a size and the backends with their
// effective weights, in canonical order.
type build struct {
	key     digest
	size    uint32
	members []member
	usable  uint32
	table   *table // set by apply
}

func (p *Programmer) plan(ch Change, tx *txn) (*plan, error) {
	sizing := Sizing{PerBackend: ch.SlotsPerBackend, Limit: ch.TableSize}
	pl := &plan{full: ch.Full, next: map[ServiceKey]*progService{}, added: map[netip.Addr][]ServiceKey{}, addrs: map[netip.Addr]bool{},
		usable: make(map[ServiceKey]uint32, len(ch.Upsert))}
	upserted := make(map[ServiceKey]bool, len(ch.Upsert))
	for _, u := range ch.Upsert {
		upserted[u.Service.Key()] = true
	}
	p.planRemovals(pl, ch, upserted)
	if err := p.preflight(ch); err != nil {
		return nil, err
	}
	if err := p.takeIDs(ch, tx); err != nil {
		return nil, err
	}
	builds := map[digest]*build{}
	sets := p.memberSets(ch.Upsert, sizing)
	for i, u := range ch.Upsert {
		sp, err := p.planService(u, &sets[i], builds)
		if err != nil {
			return nil, err
		}
		pl.svcs = append(pl.svcs, sp)
		pl.next[sp.ps.key] = sp.ps
		pl.addrs[sp.ps.key.VIP] = true
		if sp.old == nil {
			pl.added[sp.ps.key.VIP] = append(pl.added[sp.ps.key.VIP], sp.ps.key)
		}
		if sp.ps.table != nil {
			pl.usable[sp.ps.key] = sp.ps.table.usable
		} else if sp.build != nil {
			pl.usable[sp.ps.key] = sp.build.usable
		}
	}
	for _, b := range builds {
		pl.builds = append(pl.builds, b)
	}
	return pl, nil
}

// planRemovals lists the services the change takes out.
func (p *Programmer) planRemovals(pl *plan, ch Change, upserted map[ServiceKey]bool) {
	remove := func(k ServiceKey) {
		if s := p.svcs[k]; s != nil && !upserted[k] {
			if _, done := pl.next[k]; done {
				return
			}
			pl.remove = append(pl.remove, s)
			pl.next[k] = nil
			pl.addrs[k.VIP] = true
		}
	}
	for _, k := range ch.Remove {
		remove(k)
	}
	if ch.Full {
		for k := range p.svcs {
			remove(k)
		}
	}
}

// preflight checks the change against the id spaces and map sizes before
// anything is taken or written. Removed services free their ids only
// after the change, so they count until then.
func (p *Programmer) preflight(ch Change) error {
	newVIPs := 0
	newBackends := map[netip.Addr]bool{}
	allow := p.allowN
	for _, u := range ch.Upsert {
		s := u.Service
		if !ch.Checked {
			if err := s.validate(); err != nil {
				return err
			}
		}
		if len(u.Usable) != len(s.Backends) {
			return fmt.Errorf("service %q: %d usable flags for %d backends", s.Name, len(u.Usable), len(s.Backends))
		}
		if _, ok := p.ids.VIP(s.Key()); !ok {
			newVIPs++
		}
		for _, b := range s.Backends {
			if _, ok := p.ids.Backend(b.Address); !ok {
				newBackends[b.Address.Unmap()] = true
			}
		}
		var old []netip.Prefix
		if o := p.svcs[s.Key()]; o != nil {
			old = o.allow
		}
		for _, pf := range s.AllowSources {
			if !slices.Contains(old, pf) {
				allow++
			}
		}
	}
	lim := p.Limits()
	switch {
	case newVIPs > p.ids.FreeVIPs():
		return fmt.Errorf("%d new services need vip ids, %d are free (lb.max-vips = %d; ids of removed services are free only after the change)",
			newVIPs, p.ids.FreeVIPs(), lim.MaxVIPs)
	case len(newBackends) > p.ids.FreeBackends():
		return fmt.Errorf("%d new backend addresses need backend ids, %d are free (lb.max-backends = %d)",
			len(newBackends), p.ids.FreeBackends(), lim.MaxBackends)
	case allow > int(lim.AllowEntries):
		return fmt.Errorf("%d allow-sources entries, the data plane holds %d", allow, lim.AllowEntries)
	}
	return nil
}

// takeIDs assigns ids to new services and backend addresses and writes
// the new backends (no table refers to them yet, so no packet sees them).
func (p *Programmer) takeIDs(ch Change, tx *txn) error {
	for _, u := range ch.Upsert {
		k := u.Service.Key()
		if _, ok := p.ids.VIP(k); ok {
			continue
		}
		id, err := p.ids.takeVIP(k)
		if err != nil {
			return err
		}
		tx.onUndo(func() error { p.ids.releaseVIP(k); return nil })
		if err := p.lb.ResetVIPStats(id); err != nil {
			return err
		}
	}
	for _, u := range ch.Upsert {
		for _, b := range u.Service.Backends {
			a := b.Address.Unmap()
			if _, ok := p.ids.Backend(a); ok {
				continue
			}
			id, err := p.ids.takeBackend(a)
			if err != nil {
				return err
			}
			tx.onUndo(func() error { p.ids.releaseBackend(a); return nil })
			if err := p.lb.ResetBackendStats(id); err != nil {
				return err
			}
			if err := p.lb.SetBackend(id, a); err != nil {
				return err
			}
			tx.onUndo(func() error { return p.lb.DeleteBackend(id) })
		}
	}
	return nil
}

// members is a service's backends, its table size and digests, and the
// table members to build it from when no table is kept or shared (nil
// otherwise).
type members struct {
	backends []uint32 // backend ids, as configured
	eff      []member // effective members, in canonical order; nil: no build needed
	size     uint32
	confKey  digest // of the configured members: what the configuration asks for
	effKey   digest // of the effective members: the table to install
}

// memberSets works out the members of every upserted service, on every
// CPU: at a start, a million backends (the backend ids are taken and are
// only read here, as are the programmed services and shared tables).
func (p *Programmer) memberSets(ups []Upsert, sizing Sizing) []members {
	out := make([]members, len(ups))
	workers := min(max(p.workers, 1), 1+len(ups)/64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc memberScratch
			for i := w; i < len(ups); i += workers {
				out[i] = p.members(&ups[i], sizing, &sc)
			}
		}()
	}
	wg.Wait()
	return out
}

// memberScratch is one worker's buffers for sorting and digesting a
// service's members: a restart keeps every adopted table and needs the
// members only for their digests, so nothing per service is allocated
// but its backend ids (at 10,000 services of 100 backends, 75 MB of
// fresh memory less).
type memberScratch struct {
	conf, eff []member
	buf       []byte
}

func (p *Programmer) members(u *Upsert, sizing Sizing, sc *memberScratch) members {
	s := u.Service
	// With every backend usable (a start, a service without health
	// checks) the effective members are the configured ones: sorted and
	// digested once, not twice.
	allUsable := !slices.Contains(u.Usable, false)
	m := members{backends: make([]uint32, len(s.Backends))}
	conf := slices.Grow(sc.conf[:0], len(s.Backends))[:len(s.Backends)]
	for i, b := range s.Backends {
		a := b.Address.Unmap()
		id, _ := p.ids.Backend(a)
		m.backends[i] = id
		conf[i] = member{addr: a, id: id, weight: b.Weight}
	}
	eff := conf
	if !allUsable {
		eff = append(sc.eff[:0], conf...)
		for i := range s.Backends {
			if !u.Usable[i] {
				eff[i].weight = 0
			}
		}
		sc.eff = eff
	}
	sc.conf = conf
	sortMembers(conf)
	m.size = sizing.Size(len(s.Backends))
	m.confKey = digestOf(m.size, conf, &sc.buf)
	m.effKey = m.confKey
	if !allUsable {
		sortMembers(eff)
		m.effKey = digestOf(m.size, eff, &sc.buf)
	}
	if t, _ := p.reuse(u, &m); t == nil {
		m.eff = slices.Clone(eff)
	}
	return m
}

// reuse returns the table u's service keeps (held, or unchanged) or
// shares with another service's (install: to be installed for its vip
// id), nil when one is built. It only reads the programmer's state.
func (p *Programmer) reuse(u *Upsert, m *members) (t *table, install bool) {
	old := p.svcs[u.Service.Key()]
	switch {
	case old != nil && old.table != nil && u.Pending && old.config == m.confKey:
		return old.table, false // held: the earlier process's view of health stands
	case old != nil && old.table != nil && old.table.key == m.effKey:
		return old.table, false
	case p.shared[m.effKey] != nil && p.shared[m.effKey].shareable():
		return p.shared[m.effKey], true
	}
	return nil, false
}

// planService works out what service u becomes: its table is kept (held,
// or unchanged), shared with another service's, or built.
func (p *Programmer) planService(u Upsert, m *members, builds map[digest]*build) (*svcPlan, error) {
	s := u.Service
	k := s.Key()
	vid, _ := p.ids.VIP(k)
	old := p.svcs[k]
	ps := &progService{key: k, vid: vid, allow: slices.Clone(s.AllowSources), backends: m.backends}
	if len(s.AllowSources) > 0 {
		ps.flags |= bpf.DatapathVipFlagsVIP_F_ALLOWLIST
	}
	ps.config = m.confKey
	sp := &svcPlan{old: old, ps: ps, fresh: old == nil}
	if t, install := p.reuse(&u, m); t != nil {
		ps.table, sp.install = t, install
		return sp, nil
	}
	b := builds[m.effKey]
	if b == nil {
		b = &build{key: m.effKey, size: m.size, members: m.eff}
		for _, mb := range m.eff {
			if mb.weight > 0 {
				b.usable++
			}
		}
		builds[m.effKey] = b
	}
	sp.build, sp.install = b, true
	return sp, nil
}
