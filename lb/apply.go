package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/lb/maglev"
)

// apply writes a plan: tables first (new ones are invisible until a vips
// entry points at their vip id), then the records of the tables, the
// allow lists, and last the vips entries. Every write registers its undo;
// nothing is removed here (commit does that).
func (p *Programmer) apply(pl *plan, tx *txn) error {
	if err := p.buildTables(pl.builds, tx); err != nil {
		return err
	}
	if err := p.installTables(pl, tx); err != nil {
		return err
	}
	for _, sp := range pl.svcs {
		if err := p.addAllow(sp, tx); err != nil {
			return err
		}
	}
	for a := range pl.addrs {
		if err := p.writeEntries(pl, a, tx); err != nil {
			return err
		}
	}
	return nil
}

// buildTables builds and loads the plan's tables, on every CPU.
func (p *Programmer) buildTables(builds []*build, tx *txn) error {
	if len(builds) == 0 {
		return nil
	}
	if err := p.makeTableDir(); err != nil {
		return err
	}
	var (
		mu     sync.Mutex
		errs   []error
		wg     sync.WaitGroup
		next   = make(chan *build)
		loader bpf.TableLoader
	)
	for range min(p.workers, len(builds)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc buildScratch
			for b := range next {
				t, err := p.buildTable(&loader, &sc, b)
				mu.Lock()
				if err == nil {
					b.table = t
					tx.onUndo(func() error { err := t.t.Close(); t.t = nil; return err })
					err = p.keepTable(t, tx)
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, b := range builds {
		next <- b
	}
	close(next)
	wg.Wait()
	if err := loader.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// buildScratch is what one table build uses and the next reuses: the
// kernel keeps a copy of the table, so nothing of it outlives the build
// (fresh slices for each table were about 285 MB of garbage at a start
// with 10,000 tables of 12,809 slots), and the backends' keys, made once
// per address instead of once per table (a million strings at that
// start, 0.18 s of CPU, for 2,000 addresses).
type buildScratch struct {
	mb       maglev.Builder
	keys     map[netip.Addr]string // each backend's Maglev key, made once
	backends []maglev.Backend
	ids      []uint32
	slots    []int32
	table    []uint16
}

// buildTable runs Maglev over b's members and loads the result with
// loader.
func (p *Programmer) buildTable(loader *bpf.TableLoader, sc *buildScratch, b *build) (*table, error) {
	sc.backends, sc.ids = sc.backends[:0], sc.ids[:0]
	if sc.keys == nil {
		sc.keys = map[netip.Addr]string{}
	}
	for _, m := range b.members {
		key, ok := sc.keys[m.addr]
		if !ok {
			key = m.addr.String()
			sc.keys[m.addr] = key
		}
		sc.backends = append(sc.backends, maglev.Backend{Key: key, Weight: m.weight})
		sc.ids = append(sc.ids, m.id)
	}
	slots, err := sc.mb.Build(sc.slots, sc.backends, b.size)
	if err != nil {
		return nil, err
	}
	sc.slots = slots
	sc.table = slices.Grow(sc.table[:0], len(slots))[:len(slots)]
	for i, s := range slots {
		sc.table[i] = uint16(s + 1) // -1 (no backend) is 0
	}
	mt := bpf.MaglevTable{Slots: sc.table, Backends: sc.ids}
	t, err := loader.NewTable(mt)
	if err != nil {
		return nil, err
	}
	return &table{key: b.key, t: t, id: uint64(t.ID()), usable: b.usable}, nil
}

// installTables points every vip id whose table changes at its new table,
// new vip ids first, and records what it installed in maglev_meta.
func (p *Programmer) installTables(pl *plan, tx *txn) error {
	var vids []uint32
	var tables []*bpf.Table
	var changed []*svcPlan
	for _, fresh := range []bool{true, false} {
		for _, sp := range pl.svcs {
			if !sp.install || sp.fresh != fresh {
				continue
			}
			if sp.build != nil {
				sp.ps.table = sp.build.table
			}
			h, done, err := p.handle(sp.ps.table)
			if err != nil {
				return err
			}
			defer done()
			vids = append(vids, sp.ps.vid)
			tables = append(tables, h)
			changed = append(changed, sp)
		}
	}
	if len(vids) == 0 {
		return nil
	}
	tx.onUndo(func() error { return p.restoreTables(changed) })
	if err := p.lb.InstallTables(vids, tables); err != nil {
		return err
	}
	for _, sp := range changed {
		t := sp.ps.table
		m := bpf.DatapathTableMeta{TableId: uint32(t.id), Usable: t.usable, Config: sp.ps.config, Table: t.key}
		if err := p.lb.SetTableMeta(sp.ps.vid, m); err != nil {
			return err
		}
	}
	return nil
}

// restoreTables reverts installTables: a new vip id loses its table, an
// existing one gets its old table back when this process has a handle on
// it (a table adopted from an earlier process has none: the service keeps
// the new table, recorded as such).
func (p *Programmer) restoreTables(sps []*svcPlan) error {
	var errs []error
	for _, sp := range sps {
		vid := sp.ps.vid
		switch {
		case sp.old == nil:
			errs = append(errs, p.lb.DeleteTables(vid), p.lb.SetTableMeta(vid, bpf.DatapathTableMeta{}))
		case sp.old.table != nil && sp.old.table.shareable():
			o := sp.old.table
			h, done, err := p.handle(o)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, p.lb.InstallTables([]uint32{vid}, []*bpf.Table{h}),
				p.lb.SetTableMeta(vid, bpf.DatapathTableMeta{TableId: uint32(o.id), Usable: o.usable, Config: sp.old.config, Table: o.key}))
			done()
		default:
			p.log.Warn("lb: a failed change could not restore a table adopted from the earlier process; the service keeps the new one",
				"service", sp.ps.key.String())
			// The table stays installed after this process drops its
			// handle and pin (the undo of its build): keep it like an
			// adopted one without a pin.
			t := sp.ps.table
			if sp.old.table != nil {
				p.unref(sp.old.table)
			}
			sp.old.table = &table{key: t.key, id: t.id, usable: t.usable, refs: 1}
			sp.old.config = sp.ps.config
			errs = append(errs, p.lb.SetTableMeta(vid, bpf.DatapathTableMeta{TableId: uint32(t.id), Usable: t.usable, Config: sp.ps.config, Table: t.key}))
		}
	}
	return errors.Join(errs...)
}

// addAllow adds the allow-list prefixes a service gains.
func (p *Programmer) addAllow(sp *svcPlan, tx *txn) error {
	var old []netip.Prefix
	if sp.old != nil {
		old = sp.old.allow
	}
	for _, pf := range sp.ps.allow {
		if slices.Contains(old, pf) {
			continue
		}
		if err := p.lb.Allow(sp.ps.vid, pf); err != nil {
			return err
		}
		p.allowN++
		vid := sp.ps.vid
		tx.onUndo(func() error { p.allowN--; return p.lb.Disallow(vid, pf) })
	}
	return nil
}

// wantedEntries returns the vips entries of VIP address a after the plan:
// every service, the address entry, and per protocol with ports only a
// fragments-only port-0 entry carrying the vip id (table, allow list and
// counters) of the service with the lowest port.
func (p *Programmer) wantedEntries(pl *plan, a netip.Addr) map[ServiceKey]bpf.DatapathVipValue {
	keys := append(slices.Clone(p.byAddr[a]), pl.added[a]...)
	out := map[ServiceKey]bpf.DatapathVipValue{}
	lowest := map[uint8]*progService{}
	port0 := map[uint8]bool{}
	for _, k := range keys {
		s := p.svcs[k]
		if n, touched := pl.next[k]; touched {
			s = n
		}
		if s == nil {
			continue
		}
		out[k] = bpf.DatapathVipValue{VipId: s.vid, Flags: uint32(s.flags)}
		if k.Port == 0 {
			port0[k.Proto] = true
		} else if l := lowest[k.Proto]; l == nil || k.Port < l.key.Port {
			lowest[k.Proto] = s
		}
	}
	if len(out) == 0 {
		return out
	}
	out[ServiceKey{VIP: a}] = bpf.DatapathVipValue{VipId: bpf.VIPIDNone}
	for proto, s := range lowest {
		if !port0[proto] {
			flags := s.flags&bpf.DatapathVipFlagsVIP_F_ALLOWLIST | bpf.DatapathVipFlagsVIP_F_FRAGMENTS_ONLY
			out[ServiceKey{VIP: a, Proto: proto}] = bpf.DatapathVipValue{VipId: s.vid, Flags: uint32(flags)}
		}
	}
	return out
}

// writeEntries writes the entries of address a that the plan adds or
// changes; commit deletes the ones it drops.
func (p *Programmer) writeEntries(pl *plan, a netip.Addr, tx *txn) error {
	for k, v := range p.wantedEntries(pl, a) {
		old, had := p.entries[k]
		if had && old == v {
			continue
		}
		if err := p.putEntry(k, v); err != nil {
			return err
		}
		tx.onUndo(func() error {
			if had {
				return p.putEntry(k, old)
			}
			return p.lb.DeleteService(k.VIP, k.Proto, k.Port)
		})
	}
	return nil
}

func (p *Programmer) putEntry(k ServiceKey, v bpf.DatapathVipValue) error {
	if k.Proto == 0 {
		return p.lb.SetAddress(k.VIP)
	}
	return p.lb.SetService(k.VIP, k.Proto, k.Port, v.VipId, bpf.DatapathVipFlags(v.Flags))
}

// commit makes the plan the programmer's state and removes what it no
// longer needs: vips entries, tables, allow prefixes, backends and ids.
// Failures are returned together; the state is committed regardless (a
// stale entry left behind is removed by the next change that touches it
// or by a restart).
func (p *Programmer) commit(pl *plan) error {
	var errs []error
	for a := range pl.addrs {
		want := p.wantedEntries(pl, a)
		// What address a may hold: its services before the change, the
		// address entry and the port-0 entries of both protocols.
		had := append(slices.Clone(p.byAddr[a]), ServiceKey{VIP: a}, ServiceKey{VIP: a, Proto: 6}, ServiceKey{VIP: a, Proto: 17})
		for _, k := range had {
			if _, in := p.entries[k]; !in {
				continue
			}
			if _, ok := want[k]; !ok {
				if err := p.lb.DeleteService(k.VIP, k.Proto, k.Port); err != nil {
					errs = append(errs, err)
				}
				delete(p.entries, k)
			}
		}
		for k, v := range want {
			p.entries[k] = v
		}
	}
	// Every service's new references are counted before any old one is
	// dropped: a backend or a shared table that moves from one service to
	// another in the same change must not reach zero in between (it would
	// be deleted, its id freed, while the later service's table uses it).
	for _, sp := range pl.svcs {
		p.takeService(sp)
	}
	for _, sp := range pl.svcs {
		errs = append(errs, p.dropOld(sp))
	}
	for _, s := range pl.remove {
		errs = append(errs, p.removeService(s))
	}
	if pl.full {
		errs = append(errs, p.removeStale())
	}
	p.dropHandles(pl.builds)
	return errors.Join(errs...)
}

// takeService records an upserted service and counts its references to
// its table and backends.
func (p *Programmer) takeService(sp *svcPlan) {
	ps := sp.ps
	if sp.old == nil {
		p.byAddr[ps.key.VIP] = append(p.byAddr[ps.key.VIP], ps.key)
	}
	if ps.table != nil && (sp.old == nil || sp.old.table != ps.table) {
		ps.table.refs++
		if ps.table.shareable() {
			p.shared[ps.table.key] = ps.table
		}
	}
	for _, id := range ps.backends {
		p.beRefs[id]++
	}
	p.svcs[ps.key] = ps
}

// dropOld drops what an upserted service's old state held that the new
// one does not (after every service of the change took its references).
func (p *Programmer) dropOld(sp *svcPlan) error {
	if sp.old == nil {
		return nil
	}
	var errs []error
	ps := sp.ps
	if sp.old.table != nil && sp.old.table != ps.table {
		p.unref(sp.old.table)
	}
	for _, pf := range sp.old.allow {
		if !slices.Contains(ps.allow, pf) {
			errs = append(errs, p.lb.Disallow(ps.vid, pf))
			p.allowN--
		}
	}
	errs = append(errs, p.unrefBackends(sp.old.backends))
	return errors.Join(errs...)
}

// removeService takes a service out: its table, allow list, backends and
// vip id (its vips entries are gone already).
func (p *Programmer) removeService(s *progService) error {
	errs := []error{p.lb.DeleteTables(s.vid), p.lb.SetTableMeta(s.vid, bpf.DatapathTableMeta{})}
	if s.table != nil {
		p.unref(s.table)
	}
	for _, pf := range s.allow {
		errs = append(errs, p.lb.Disallow(s.vid, pf))
		p.allowN--
	}
	errs = append(errs, p.unrefBackends(s.backends))
	p.byAddr[s.key.VIP] = slices.DeleteFunc(p.byAddr[s.key.VIP], func(k ServiceKey) bool { return k == s.key })
	if len(p.byAddr[s.key.VIP]) == 0 {
		delete(p.byAddr, s.key.VIP)
	}
	delete(p.svcs, s.key)
	p.ids.releaseVIP(s.key)
	return errors.Join(errs...)
}

// unref drops one service's use of a table; the last one closes it (the
// kernel frees it once no vip id points at it).
func (p *Programmer) unref(t *table) {
	if t.refs--; t.refs > 0 {
		return
	}
	p.release(t)
}

// unrefBackends drops one service's use of backends; a backend no
// service uses is cleared and its id freed.
func (p *Programmer) unrefBackends(ids []uint32) error {
	var errs []error
	for _, id := range ids {
		if p.beRefs[id]--; p.beRefs[id] > 0 {
			continue
		}
		delete(p.beRefs, id)
		if a, ok := p.ids.backendAddr(id); ok {
			errs = append(errs, p.deleteBackend(a))
		}
	}
	return errors.Join(errs...)
}

func (p *Programmer) deleteBackend(a netip.Addr) error {
	id, ok := p.ids.Backend(a)
	if !ok {
		return nil
	}
	p.ids.releaseBackend(a)
	if err := p.lb.DeleteBackend(id); err != nil {
		return fmt.Errorf("backend %s: %w", a, err)
	}
	return nil
}

// removeStale removes, after a full change, what adoption found and no
// service claimed: backends, tables and allow lists of unknown vip ids,
// vips entries of addresses without services.
func (p *Programmer) removeStale() error {
	var errs []error
	for k := range p.entries {
		if len(p.byAddr[k.VIP]) == 0 {
			errs = append(errs, p.lb.DeleteService(k.VIP, k.Proto, k.Port))
			delete(p.entries, k)
		}
	}
	for a, id := range p.ids.backendOf {
		if p.beRefs[id] == 0 {
			errs = append(errs, p.deleteBackend(a))
		}
	}
	errs = append(errs, p.lb.DeleteTables(p.staleTables...))
	p.staleTables = nil
	for vid, pfx := range p.staleAllow {
		for _, pf := range pfx {
			errs = append(errs, p.lb.Disallow(vid, pf))
			p.allowN--
		}
	}
	clear(p.staleAllow)
	return errors.Join(errs...)
}
