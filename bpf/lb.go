package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// VIPIDNone is the vip_id of an address entry: it indexes no table,
// allow list or counter.
const VIPIDNone = 0xffffffff

// LB writes services, backends, Maglev tables and allow lists into the lb
// stage's maps in their C layout, and reads their counters. It holds no
// policy: the control plane (lb.Programmer, its one user in the daemon)
// decides what to program; tests and benchmarks use it directly. It does
// not own the maps (the data plane does, see internal/datapath).
type LB struct {
	m           LBMaps
	vs          *vipSets
	maxVIPs     uint32
	maxBackends uint32
}

// NewLB returns an LB for maps; the id spaces are the sizes the maps were
// loaded with (Config.MaxVIPs, Config.MaxBackends).
func NewLB(m LBMaps) *LB {
	return &LB{m: m, vs: newVIPSets(m.Vips, m.VipSets, m.VipSetIndex), maxVIPs: m.Maglev.MaxEntries(), maxBackends: m.Backends.MaxEntries() - 1}
}

// MaxVIPs returns the number of vip ids: 0 <= vip_id < MaxVIPs.
func (l *LB) MaxVIPs() uint32 { return l.maxVIPs }

// MaxBackends returns the number of backend ids: 1 <= id <= MaxBackends.
func (l *LB) MaxBackends() uint32 { return l.maxBackends }

// VIPEntries returns how many entries the vips map holds.
func (l *LB) VIPEntries() uint32 { return l.m.Vips.MaxEntries() }

// AllowEntries returns how many entries the allow map holds.
func (l *LB) AllowEntries() uint32 { return l.m.Allow.MaxEntries() }

func (l *LB) checkVIP(id uint32) error {
	if id >= l.maxVIPs {
		return fmt.Errorf("vip id %d out of range 0..%d", id, l.maxVIPs-1)
	}
	return nil
}

func (l *LB) checkBackend(id uint32) error {
	if id == 0 || id > l.maxBackends {
		return fmt.Errorf("backend id %d out of range 1..%d", id, l.maxBackends)
	}
	return nil
}

// SetBackend writes backend id (1 <= id <= MaxBackends).
func (l *LB) SetBackend(id uint32, addr netip.Addr) error {
	if err := l.checkBackend(id); err != nil {
		return err
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
	if err := l.checkBackend(id); err != nil {
		return err
	}
	if err := l.m.Backends.Put(id, &DatapathBackend{}); err != nil {
		return fmt.Errorf("clear backend %d: %w", id, err)
	}
	return l.forgetNexthop(id)
}

// Backends returns every valid backend: id -> address.
func (l *LB) Backends() (map[uint32]netip.Addr, error) {
	out := map[uint32]netip.Addr{}
	err := ReadArray(l.m.Backends, func(id uint32, be *DatapathBackend) {
		if be.Flags&uint32(DatapathBackendFlagsBACKEND_F_VALID) != 0 {
			out[id] = netip.AddrFrom16(be.Addr).Unmap()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read backends: %w", err)
	}
	return out, nil
}

// forgetNexthop empties backend id's entry of backend_cpu on every CPU:
// its next-hop cache, and with it its counters (an id changes hands).
func (l *LB) forgetNexthop(id uint32) error {
	if err := l.clearBackendCPU(id); err != nil {
		return fmt.Errorf("clear next hop of backend %d: %w", id, err)
	}
	return nil
}

// clearBackendCPU zeroes backend id's entry of backend_cpu on every CPU.
func (l *LB) clearBackendCPU(id uint32) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	return l.m.BackendCPU.Put(id, make([]DatapathBackendCpuState, n))
}

// VIPKey returns the vips key of a service (port 0: VIP-wide; proto and
// port 0: the address entry).
func VIPKey(addr netip.Addr, proto uint8, port uint16) DatapathVipKey {
	return DatapathVipKey{Addr: Addr16(addr), Port: Htons(port), Proto: proto}
}

// SetService maps (addr, proto, port) to vipID with flags.
func (l *LB) SetService(addr netip.Addr, proto uint8, port uint16, vipID uint32, flags DatapathVipFlags) error {
	if err := l.checkVIP(vipID); err != nil {
		return err
	}
	return l.putVIP(addr, proto, port, DatapathVipValue{VipId: vipID, Flags: uint32(flags)})
}

func (l *LB) putVIP(addr netip.Addr, proto uint8, port uint16, v DatapathVipValue) error {
	k := VIPKey(addr, proto, port)
	if err := l.vs.put(k, v); err != nil {
		return fmt.Errorf("write service %s %d/%d: %w", addr, port, proto, err)
	}
	return nil
}

// DeleteService removes a service entry.
func (l *LB) DeleteService(addr netip.Addr, proto uint8, port uint16) error {
	k := VIPKey(addr, proto, port)
	if err := l.vs.del(k); err != nil {
		return fmt.Errorf("delete service %s %d/%d: %w", addr, port, proto, err)
	}
	return nil
}

// SyncVIPSets makes vip_sets, the copy of vips the data path reads
// first, match vips again: a control plane that adopts pinned maps calls
// it before it changes anything (every change also does it once first).
func (l *LB) SyncVIPSets() error {
	if err := l.vs.sync(); err != nil {
		return fmt.Errorf("sync vip_sets: %w", err)
	}
	return nil
}

// VerifyVIPSets reports every difference between vip_sets and vips (nil:
// the data path sees exactly the entries of vips): for tests.
func (l *LB) VerifyVIPSets() error {
	return l.vs.verify()
}

// SetAddress writes the address entry of a VIP address: echo requests are
// answered, unmatched traffic to it is dropped. It takes no vip id.
func (l *LB) SetAddress(addr netip.Addr) error {
	return l.putVIP(addr, 0, 0, DatapathVipValue{VipId: VIPIDNone})
}

// Entry is one vips entry.
type Entry struct {
	Addr  netip.Addr
	Proto uint8
	Port  uint16
	DatapathVipValue
}

// Entries returns every vips entry.
func (l *LB) Entries() ([]Entry, error) {
	var out []Entry
	err := ReadHash(l.m.Vips, func(k *DatapathVipKey, v *DatapathVipValue) {
		out = append(out, Entry{Addr: netip.AddrFrom16(k.Addr).Unmap(), Proto: k.Proto, Port: Ntohs(k.Port), DatapathVipValue: *v})
	})
	if err != nil {
		return nil, fmt.Errorf("read vips: %w", err)
	}
	return out, nil
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
	if err := l.m.Allow.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("disallow %s for vip %d: %w", p, vipID, err)
	}
	return nil
}

// Allowed returns every allow entry: vip id -> source prefixes.
func (l *LB) Allowed() (map[uint32][]netip.Prefix, error) {
	out := map[uint32][]netip.Prefix{}
	var k DatapathAllowKey
	var v uint32
	it := l.m.Allow.Iterate()
	for it.Next(&k, &v) {
		a := netip.AddrFrom16(k.Addr)
		bits := int(k.Prefixlen) - 32
		if a.Is4In6() {
			a, bits = a.Unmap(), bits-96
		}
		out[k.VipId] = append(out[k.VipId], netip.PrefixFrom(a, bits))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read allow lists: %w", err)
	}
	return out, nil
}

// VIPCounters returns, per vip id in ids, the packets and bytes the load
// balancer picked a backend for, summed over CPUs (vip_stats).
func (l *LB) VIPCounters(ids []uint32) (map[uint32]DatapathCounter, error) {
	return SumCounters(l.m.VipStats, ids)
}

// BackendCounters returns, per backend id in ids, the packets and bytes
// sent to that backend, summed over CPUs (backend_cpu's traffic).
func (l *LB) BackendCounters(ids []uint32) (map[uint32]DatapathCounter, error) {
	return SumBackendTraffic(l.m.BackendCPU, ids)
}

// ReadHash calls f for every entry of a HASH map, reading it in batches
// (two syscalls per entry with an iterator: 10,000 VIPs' entries took
// about 0.15 s to read that way).
func ReadHash[K, V any](m *ebpf.Map, f func(k *K, v *V)) error {
	const chunk = 4096
	keys := make([]K, chunk)
	vals := make([]V, chunk)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			f(&keys[i], &vals[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ReadArray calls f for every entry of an ARRAY map, reading it in
// batches.
func ReadArray[V any](m *ebpf.Map, f func(k uint32, v *V)) error {
	const chunk = 4096
	keys := make([]uint32, chunk)
	vals := make([]V, chunk)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			f(keys[i], &vals[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
