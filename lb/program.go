package lb

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/lb/maglev"
)

// serviceKey identifies a service in the vips map; port 0 and proto 0 is a
// VIP's address entry.
type serviceKey struct {
	addr  netip.Addr
	proto uint8
	port  uint16
}

// Programmer writes services into the lb stage's maps. Ids (vip_id,
// backend id) are what conntrack entries refer to, so they are adopted
// from the pinned maps at start and never reused soon after being freed:
// an established flow keeps its backend across reloads and restarts.
type Programmer struct {
	lb       *bpf.LB
	size     uint32
	builder  maglev.Builder
	vipIDs   map[serviceKey]uint32
	backends map[netip.Addr]uint32
	tables   map[uint32][]uint32 // installed Maglev table per vip_id
	allowed  map[uint32][]netip.Prefix
	nextVIP  uint32
	nextBE   uint32
}

// NewProgrammer adopts the ids already in the maps (written by an earlier
// aird) and returns a programmer for them.
func NewProgrammer(maps bpf.LBMaps, tableSize uint32) (*Programmer, error) {
	p := &Programmer{lb: bpf.NewLB(maps, tableSize), size: tableSize, vipIDs: map[serviceKey]uint32{},
		backends: map[netip.Addr]uint32{}, tables: map[uint32][]uint32{}, allowed: map[uint32][]netip.Prefix{}, nextBE: 1}
	if err := p.adopt(maps); err != nil {
		return nil, fmt.Errorf("lb: adopt pinned state: %w", err)
	}
	return p, nil
}

func (p *Programmer) adopt(maps bpf.LBMaps) error {
	var k bpf.DatapathVipKey
	var v bpf.DatapathVipValue
	it := maps.Vips.Iterate()
	for it.Next(&k, &v) {
		addr := netip.AddrFrom16(k.Addr).Unmap()
		p.vipIDs[serviceKey{addr, k.Proto, bpf.Ntohs(k.Port)}] = v.VipId
		p.nextVIP = max(p.nextVIP, v.VipId+1)
	}
	if err := it.Err(); err != nil {
		return err
	}
	var be bpf.DatapathBackend
	for id := uint32(1); id < bpf.MaxBackends; id++ {
		if err := maps.Backends.Lookup(id, &be); err != nil {
			return err
		}
		if be.Flags&uint32(bpf.DatapathBackendFlagsBACKEND_F_VALID) != 0 {
			p.backends[netip.AddrFrom16(be.Addr).Unmap()] = id
			p.nextBE = max(p.nextBE, id+1)
		}
	}
	return nil
}

// alloc returns the next free id at or after *next, wrapping within
// [lo, limit): freed ids are reused only after every other id.
func alloc(next *uint32, lo, limit uint32, used func(uint32) bool) (uint32, error) {
	for range limit - lo {
		if *next < lo || *next >= limit {
			*next = lo
		}
		id := *next
		*next++
		if !used(id) {
			return id, nil
		}
	}
	return 0, errors.New("no free id")
}

func (p *Programmer) vipID(k serviceKey) (uint32, error) {
	if id, ok := p.vipIDs[k]; ok {
		return id, nil
	}
	id, err := alloc(&p.nextVIP, 0, bpf.MaxVIPs, func(id uint32) bool {
		for _, v := range p.vipIDs {
			if v == id {
				return true
			}
		}
		return false
	})
	if err != nil {
		return 0, fmt.Errorf("vip ids exhausted (%d): %w", bpf.MaxVIPs, err)
	}
	if err := p.lb.ResetVIPStats(id); err != nil {
		return 0, err
	}
	p.vipIDs[k] = id
	return id, nil
}

func (p *Programmer) backendID(a netip.Addr) (uint32, bool, error) {
	if id, ok := p.backends[a]; ok {
		return id, false, nil
	}
	id, err := alloc(&p.nextBE, 1, bpf.MaxBackends, func(id uint32) bool {
		for _, v := range p.backends {
			if v == id {
				return true
			}
		}
		return false
	})
	if err != nil {
		return 0, false, fmt.Errorf("backend ids exhausted (%d): %w", bpf.MaxBackends-1, err)
	}
	if err := p.lb.ResetBackendStats(id); err != nil {
		return 0, false, err
	}
	p.backends[a] = id
	return id, true, nil
}

func protoNum(s string) uint8 {
	if s == "udp" {
		return 17
	}
	return 6
}

// Sync makes the maps serve exactly services. usable says whether a
// backend may take new flows (healthy, not drained); unusable backends keep
// their id, so established flows tracked to them keep working. New entries
// are written before stale ones are removed, so no packet finds a gap:
// backends first, then every changed Maglev table (in batches, one RCU
// grace period per batch: after a restart every table is re-installed),
// then the vips entries that point at them.
func (p *Programmer) Sync(services []config.Service, usable func(service string, backend netip.Addr) bool) error {
	want := map[serviceKey]bool{}
	wantBE := map[netip.Addr]bool{}
	changed := map[uint32][]uint32{}
	es := entries(services)
	vids := make([]uint32, len(es))
	for i, e := range es {
		vid, table, err := p.buildService(e.svc, usable, wantBE)
		if err != nil {
			return fmt.Errorf("lb: service %s: %w", e.svc.Name, err)
		}
		if !slices.Equal(p.tables[vid], table) {
			changed[vid] = table
		}
		vids[i] = vid
	}
	if err := p.lb.SetTables(changed); err != nil {
		return fmt.Errorf("lb: %w", err)
	}
	maps.Copy(p.tables, changed)
	for i, e := range es {
		if err := p.publishService(e.svc, vids[i], e.flags, want); err != nil {
			return fmt.Errorf("lb: service %s: %w", e.svc.Name, err)
		}
	}
	return p.removeStale(want, wantBE)
}

// buildService assigns the ids of a service and its backends, writes new
// backends, and returns the service's vip_id and Maglev table.
func (p *Programmer) buildService(s config.Service, usable func(string, netip.Addr) bool, wantBE map[netip.Addr]bool) (uint32, []uint32, error) {
	bes := make([]maglev.Backend, len(s.Backends))
	ids := make([]uint32, len(s.Backends))
	for i, b := range s.Backends {
		id, fresh, err := p.backendID(b.Address)
		if err != nil {
			return 0, nil, err
		}
		if fresh {
			if err := p.lb.SetBackend(id, b.Address); err != nil {
				return 0, nil, err
			}
		}
		ids[i], wantBE[b.Address] = id, true
		w := uint32(b.Weight)
		if !usable(s.Name, b.Address) {
			w = 0
		}
		bes[i] = maglev.Backend{Key: b.Address.String(), Weight: w}
	}
	slots, err := p.builder.Build(nil, bes, p.size)
	if err != nil {
		return 0, nil, err
	}
	table := make([]uint32, len(slots))
	for i, s := range slots {
		if s >= 0 {
			table[i] = ids[s]
		}
	}
	vid, err := p.vipID(serviceKey{s.VIP, protoNum(s.Protocol), uint16(s.Port)})
	return vid, table, err
}

// publishService writes a service's allow list, its vips entry (with
// flags) and its VIP's address entry; its Maglev table is already
// installed.
func (p *Programmer) publishService(s config.Service, vid uint32, flags bpf.DatapathVipFlags, want map[serviceKey]bool) error {
	key := serviceKey{s.VIP, protoNum(s.Protocol), uint16(s.Port)}
	if err := p.syncAllow(vid, s.AllowSources); err != nil {
		return err
	}
	if len(s.AllowSources) > 0 {
		flags |= bpf.DatapathVipFlagsVIP_F_ALLOWLIST
	}
	if err := p.lb.SetService(s.VIP, key.proto, key.port, vid, flags); err != nil {
		return err
	}
	addrKey := serviceKey{addr: s.VIP}
	aid, err := p.vipID(addrKey)
	if err != nil {
		return err
	}
	want[key], want[addrKey] = true, true
	return p.lb.SetAddress(s.VIP, aid, 0)
}

func (p *Programmer) syncAllow(vid uint32, want []netip.Prefix) error {
	for _, pf := range want {
		if err := p.lb.Allow(vid, pf); err != nil {
			return err
		}
	}
	for _, pf := range p.allowed[vid] {
		if !slices.Contains(want, pf) {
			if err := p.lb.Disallow(vid, pf); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return err
			}
		}
	}
	p.allowed[vid] = slices.Clone(want)
	return nil
}

func (p *Programmer) removeStale(want map[serviceKey]bool, wantBE map[netip.Addr]bool) error {
	var errs []error
	for k, vid := range p.vipIDs {
		if want[k] {
			continue
		}
		if err := p.lb.DeleteService(k.addr, k.proto, k.port); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
		if k.proto != 0 {
			if err := p.lb.DeleteTable(vid); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, err)
			}
			_ = p.syncAllow(vid, nil)
		}
		delete(p.vipIDs, k)
		delete(p.tables, vid)
		delete(p.allowed, vid)
	}
	for a, id := range p.backends {
		if wantBE[a] {
			continue
		}
		if err := p.lb.DeleteBackend(id); err != nil {
			errs = append(errs, err)
		}
		delete(p.backends, a)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lb: remove stale entries: %w", err)
	}
	return nil
}

// Table returns the installed Maglev table of a service (for tests and
// airctl), or nil.
func (p *Programmer) Table(vip netip.Addr, protocol string, port int) []uint32 {
	id, ok := p.vipIDs[serviceKey{vip, protoNum(protocol), uint16(port)}]
	if !ok {
		return nil
	}
	return p.tables[id]
}

// BackendID returns the id of a backend address, or 0.
func (p *Programmer) BackendID(a netip.Addr) uint32 { return p.backends[a] }

// VIPCounters returns the traffic counters of vip ids (see bpf.LB).
func (p *Programmer) VIPCounters(ids []uint32) (map[uint32]bpf.DatapathCounter, error) {
	return p.lb.VIPCounters(ids)
}

// BackendCounters returns the traffic counters of backend ids.
func (p *Programmer) BackendCounters(ids []uint32) (map[uint32]bpf.DatapathCounter, error) {
	return p.lb.BackendCounters(ids)
}
