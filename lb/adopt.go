package lb

import (
	"fmt"
	"net/netip"

	"github.com/aird-net/aird/bpf"
)

// Adopt implements Dataplane: it reads the services, backends, allow
// lists and tables an earlier process programmed, records their ids in
// ids, and keeps ids for the ids it takes later. A table counts as
// adopted when maglev_meta says what it was built from (the record of the
// map installed now): then a service whose configuration is unchanged
// keeps it without a rebuild.
func (p *Programmer) Adopt(ids *IDs) (Adopted, error) {
	var a Adopted
	p.ids = ids
	if err := p.lb.SyncVIPSets(); err != nil {
		return a, fmt.Errorf("lb: adopt pinned state: %w", err)
	}
	if err := p.adoptEntries(ids, &a); err != nil {
		return a, fmt.Errorf("lb: adopt pinned state: %w", err)
	}
	backends, err := p.lb.Backends()
	if err != nil {
		return a, fmt.Errorf("lb: adopt pinned state: %w", err)
	}
	for id, addr := range backends {
		if err := ids.adoptBackend(addr, id); err != nil {
			p.log.Warn("lb: a backend found twice in the pinned maps; the duplicate is removed", "backend", addr, "id", id, "err", err)
			if err := p.lb.DeleteBackend(id); err != nil {
				return a, fmt.Errorf("lb: adopt pinned state: %w", err)
			}
			continue
		}
		a.Backends++
	}
	if err := p.adoptAllow(); err != nil {
		return a, fmt.Errorf("lb: adopt pinned state: %w", err)
	}
	if err := p.adoptTables(&a); err != nil {
		return a, fmt.Errorf("lb: adopt pinned state: %w", err)
	}
	ids.adopted()
	return a, nil
}

// adoptEntries reads vips: services (with their vip ids), address and
// fragments entries.
func (p *Programmer) adoptEntries(ids *IDs, a *Adopted) error {
	entries, err := p.lb.Entries()
	if err != nil {
		return err
	}
	for _, e := range entries {
		k := ServiceKey{VIP: e.Addr, Proto: e.Proto, Port: e.Port}
		p.entries[k] = e.DatapathVipValue
		fragments := e.Flags&uint32(bpf.DatapathVipFlagsVIP_F_FRAGMENTS_ONLY) != 0
		if e.Proto == 0 || fragments {
			continue
		}
		if err := ids.adoptVIP(k, e.VipId); err != nil {
			return err
		}
		p.svcs[k] = &progService{key: k, vid: e.VipId, flags: bpf.DatapathVipFlags(e.Flags)}
		p.byAddr[k.VIP] = append(p.byAddr[k.VIP], k)
		a.Services++
	}
	return nil
}

// adoptAllow reads the allow lists; those of vip ids no service has are
// removed by the first full Program.
func (p *Programmer) adoptAllow() error {
	allowed, err := p.lb.Allowed()
	if err != nil {
		return err
	}
	byVID := p.byVID()
	for vid, pfx := range allowed {
		p.allowN += len(pfx)
		if s := byVID[vid]; s != nil {
			s.allow = pfx
		} else {
			p.staleAllow[vid] = pfx
		}
	}
	return nil
}

// adoptTables accounts for the installed tables that maglev_meta
// describes; a table without a valid record is replaced when its service
// is programmed.
func (p *Programmer) adoptTables(a *Adopted) error {
	installed, err := p.lb.InstalledTables()
	if err != nil {
		return err
	}
	metas, err := p.lb.TableMetas()
	if err != nil {
		return err
	}
	ids := make(map[uint64]bool, len(installed))
	for _, id := range installed {
		ids[uint64(id)] = true
	}
	pinned, err := p.adoptPins(ids)
	if err != nil {
		return err
	}
	byVID := p.byVID()
	byID := map[uint64]*table{}
	for vid, id := range installed {
		s := byVID[vid]
		if s == nil {
			p.staleTables = append(p.staleTables, vid)
			continue
		}
		m, ok := metas[vid]
		if !ok || uint64(m.TableId) != uint64(id) {
			continue
		}
		t := byID[uint64(id)]
		if t == nil {
			t = &table{key: m.Table, id: uint64(id), usable: m.Usable}
			if key, ok := pinned[uint64(id)]; ok && key == t.key {
				t.pinned = true
				p.shared[t.key] = t
			}
			byID[uint64(id)] = t
		}
		t.refs++
		s.table, s.config = t, m.Config
		a.Tables++
	}
	// A pinned table whose record is missing (a crash between install and
	// record) is not accounted for: its pin goes, the vip keeps it until
	// its service is programmed again.
	for id, key := range pinned {
		if t := byID[id]; t == nil || !t.pinned {
			if err := removePin(p.pinPath(key)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Programmer) byVID() map[uint32]*progService {
	out := make(map[uint32]*progService, len(p.svcs))
	for _, s := range p.svcs {
		out[s.vid] = s
	}
	return out
}

// addrServices returns the services programmed on a VIP address.
func (p *Programmer) addrServices(a netip.Addr) []ServiceKey { return p.byAddr[a] }
