package bpf

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Limits of the load-balancer maps (see lb_maps.h).
const (
	// MaxVIPs bounds vip ids: 0 <= vip_id < MaxVIPs.
	MaxVIPs = 16384
	// MaxBackends bounds backend ids: 1 <= backend id < MaxBackends; 0
	// marks an empty Maglev slot.
	MaxBackends = 16384
)

// LB writes services, backends, Maglev tables and allow lists into the lb
// stage's maps in their C layout, and reads their counters. It holds no
// policy: the control plane (lb.Programmer, its one user in the daemon)
// decides what to program; tests and benchmarks use it directly. It does
// not own the maps (the data plane does, see internal/datapath).
type LB struct {
	m         LBMaps
	tableSize uint32
}

// NewLB returns an LB for maps whose Maglev tables have tableSize slots
// (the Config.MaglevTableSize the datapath was loaded with).
func NewLB(m LBMaps, tableSize uint32) *LB {
	if tableSize == 0 {
		tableSize = DefaultMaglevTableSize
	}
	return &LB{m: m, tableSize: tableSize}
}

// TableSize returns the Maglev table size.
func (l *LB) TableSize() uint32 { return l.tableSize }

// SetBackend writes backend id (1 <= id < MaxBackends).
func (l *LB) SetBackend(id uint32, addr netip.Addr) error {
	if id == 0 || id >= MaxBackends {
		return fmt.Errorf("backend id %d out of range 1..%d", id, MaxBackends-1)
	}
	v := DatapathBackend{Addr: Addr16(addr), Flags: uint32(DatapathBackendFlagsBACKEND_F_VALID)}
	if addr.Unmap().Is4() {
		v.Flags |= uint32(DatapathBackendFlagsBACKEND_F_IPV4)
	}
	if err := l.m.Backends.Put(id, &v); err != nil {
		return fmt.Errorf("write backend %d: %w", id, err)
	}
	return l.forgetNexthop(id)
}

// DeleteBackend clears backend id; flows tracked to it pick a new one.
func (l *LB) DeleteBackend(id uint32) error {
	if err := l.m.Backends.Put(id, &DatapathBackend{}); err != nil {
		return fmt.Errorf("clear backend %d: %w", id, err)
	}
	return l.forgetNexthop(id)
}

// forgetNexthop empties the next-hop cache of backend id on every CPU.
func (l *LB) forgetNexthop(id uint32) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	if err := l.m.Nexthops.Put(id, make([]DatapathNexthop, n)); err != nil {
		return fmt.Errorf("clear next hop of backend %d: %w", id, err)
	}
	return nil
}

// VIPKey returns the vips key of a service (port 0: VIP-wide; proto and
// port 0: the address entry).
func VIPKey(addr netip.Addr, proto uint8, port uint16) DatapathVipKey {
	return DatapathVipKey{Addr: Addr16(addr), Port: Htons(port), Proto: proto}
}

// SetService maps (addr, proto, port) to vipID with flags.
func (l *LB) SetService(addr netip.Addr, proto uint8, port uint16, vipID uint32, flags DatapathVipFlags) error {
	if vipID >= MaxVIPs {
		return fmt.Errorf("vip id %d out of range 0..%d", vipID, MaxVIPs-1)
	}
	k := VIPKey(addr, proto, port)
	if err := l.m.Vips.Put(&k, &DatapathVipValue{VipId: vipID, Flags: uint32(flags)}); err != nil {
		return fmt.Errorf("write service %s %d/%d: %w", addr, port, proto, err)
	}
	return nil
}

// DeleteService removes a service entry.
func (l *LB) DeleteService(addr netip.Addr, proto uint8, port uint16) error {
	k := VIPKey(addr, proto, port)
	if err := l.m.Vips.Delete(&k); err != nil {
		return fmt.Errorf("delete service %s %d/%d: %w", addr, port, proto, err)
	}
	return nil
}

// SetAddress writes the address entry of a VIP address: echo requests are
// answered, unmatched traffic to it is dropped. vipID only counts.
func (l *LB) SetAddress(addr netip.Addr, vipID uint32, flags DatapathVipFlags) error {
	return l.SetService(addr, 0, 0, vipID, flags)
}

// SetTable installs a Maglev table (slot -> backend id, 0 = empty) for
// vipID by building a new inner map and swapping it in, so the datapath
// switches tables atomically.
func (l *LB) SetTable(vipID uint32, table []uint32) error {
	inner, err := l.newTable(vipID, table)
	if err != nil {
		return err
	}
	defer inner.Close() // the outer map keeps it alive
	if err := l.m.Maglev.Put(vipID, inner); err != nil {
		return fmt.Errorf("install maglev table of vip %d: %w", vipID, err)
	}
	return nil
}

// ShareTable points the vips at the Maglev table of vip from (benchmarks:
// many VIPs, one table). It is one batch update: every single update of a
// map-in-map waits for an RCU grace period.
func (l *LB) ShareTable(from uint32, vips ...uint32) error {
	var id ebpf.MapID
	if err := l.m.Maglev.Lookup(from, &id); err != nil {
		return fmt.Errorf("maglev table of vip %d: %w", from, err)
	}
	inner, err := ebpf.NewMapFromID(id)
	if err != nil {
		return fmt.Errorf("maglev table of vip %d: %w", from, err)
	}
	defer inner.Close()
	fds := make([]uint32, len(vips))
	for i := range fds {
		fds[i] = uint32(inner.FD())
	}
	if _, err := l.m.Maglev.BatchUpdate(vips, fds, nil); err != nil {
		return fmt.Errorf("share maglev table of vip %d: %w", from, err)
	}
	return nil
}

// DeleteTable removes the Maglev table of vipID (its traffic is dropped).
func (l *LB) DeleteTable(vipID uint32) error {
	if err := l.m.Maglev.Delete(vipID); err != nil {
		return fmt.Errorf("delete maglev table of vip %d: %w", vipID, err)
	}
	return nil
}

// AllowKey returns the allow key of a source prefix for vipID.
func AllowKey(vipID uint32, p netip.Prefix) DatapathAllowKey {
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return DatapathAllowKey{Prefixlen: 32 + uint32(bits), VipId: vipID, Addr: Addr16(p.Masked().Addr())}
}

// Allow adds a source prefix to the allow list of vipID (effective for
// services with VIP_F_ALLOWLIST).
func (l *LB) Allow(vipID uint32, p netip.Prefix) error {
	k := AllowKey(vipID, p)
	if err := l.m.Allow.Put(&k, uint32(1)); err != nil {
		return fmt.Errorf("allow %s for vip %d: %w", p, vipID, err)
	}
	return nil
}

// Disallow removes a source prefix from the allow list of vipID.
func (l *LB) Disallow(vipID uint32, p netip.Prefix) error {
	k := AllowKey(vipID, p)
	if err := l.m.Allow.Delete(&k); err != nil {
		return fmt.Errorf("disallow %s for vip %d: %w", p, vipID, err)
	}
	return nil
}

// VIPCounters returns, per vip id in ids, the packets and bytes the load
// balancer picked a backend for (a service's id) or answered (an address
// entry's id: echo requests), summed over CPUs (vip_stats).
func (l *LB) VIPCounters(ids []uint32) (map[uint32]DatapathCounter, error) {
	return SumCounters(l.m.VipStats, ids)
}

// BackendCounters returns, per backend id in ids, the packets and bytes
// sent to that backend, summed over CPUs (backend_stats).
func (l *LB) BackendCounters(ids []uint32) (map[uint32]DatapathCounter, error) {
	return SumCounters(l.m.BackendStats, ids)
}
