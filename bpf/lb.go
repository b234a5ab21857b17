package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// Limits of the load-balancer maps (see lb_maps.h).
const (
	// MaxVIPs bounds vip ids: 0 <= vip_id < MaxVIPs.
	MaxVIPs = 16384
	// MaxBackends bounds backend ids: 1 <= backend id < MaxBackends; 0
	// marks an empty Maglev slot.
	MaxBackends = 16384
)

// Htons converts a port to the network-order representation the generated
// structs hold in their __be16 fields.
func Htons(v uint16) uint16 { return v<<8 | v>>8 }

// Ntohs is the inverse of Htons.
func Ntohs(v uint16) uint16 { return Htons(v) }

// Addr16 returns addr as the 16 bytes the maps use: IPv6 as is, IPv4
// IPv4-mapped.
func Addr16(addr netip.Addr) [16]byte { return addr.Unmap().As16() }

// Flow hash constants; they match flow.h.
const (
	flowHashInit = 0x6a09e667f3bcc909
	flowHashMul  = 0x9e3779b97f4a7c15
	flowHashFin1 = 0xbf58476d1ce4e5b9
	flowHashFin2 = 0x94d049bb133111eb
)

// Bytes returns the key in its C memory layout.
func (k *DatapathFlowKey) Bytes() [40]byte {
	var b [40]byte
	copy(b[0:16], k.Src[:])
	copy(b[16:32], k.Dst[:])
	// __be16 fields hold network-order bytes; the generated uint16 is their
	// little-endian reading (bpf2go objects are bpfel only).
	binary.LittleEndian.PutUint16(b[32:], k.Sport)
	binary.LittleEndian.PutUint16(b[34:], k.Dport)
	b[36] = k.Proto
	copy(b[37:40], k.Pad[:])
	return b
}

// FlowHash is the flow hash of flow.h: it picks the Maglev slot
// (MaglevSlot) and the varying bits of the outer source address.
func FlowHash(k *DatapathFlowKey, seed uint32) uint64 {
	b := k.Bytes()
	h := uint64(flowHashInit) ^ uint64(seed)
	for i := 0; i < 40; i += 8 {
		h ^= binary.LittleEndian.Uint64(b[i:])
		h *= flowHashMul
		h ^= h >> 29
	}
	h ^= h >> 30
	h *= flowHashFin1
	h ^= h >> 27
	h *= flowHashFin2
	h ^= h >> 31
	return h
}

// ConntrackIndex returns the conntrack set a flow with this hash uses on
// cpu, for a datapath with sets sets per CPU (the ct_sets constant).
func ConntrackIndex(hash uint64, cpu, sets uint32) uint32 {
	return cpu*sets + uint32(hash>>32)%sets
}

// MaglevSlot returns the Maglev table slot of a flow hash.
func MaglevSlot(hash uint64, tableSize uint32) uint32 { return uint32(hash) % tableSize }

// NewFlowKey builds a flow key; ports are in host order (0 for flows hashed
// without ports).
func NewFlowKey(src, dst netip.Addr, sport, dport uint16, proto uint8) DatapathFlowKey {
	return DatapathFlowKey{Src: Addr16(src), Dst: Addr16(dst), Sport: Htons(sport), Dport: Htons(dport), Proto: proto}
}

// LBMaps are the maps an LB programs.
type LBMaps struct {
	Vips, Maglev, Backends, Allow, Settings, DecapAddrs, Nexthops *ebpf.Map
	// VipStats and BackendStats are reset when an id is handed out again.
	VipStats, BackendStats *ebpf.Map
}

// LBMapsOf returns the LB maps of loaded datapath objects.
func LBMapsOf(m *DatapathMaps) LBMaps {
	return LBMaps{Vips: m.Vips, Maglev: m.Maglev, Backends: m.Backends, Allow: m.Allow,
		Settings: m.Settings, DecapAddrs: m.DecapAddrs, Nexthops: m.Nexthops, VipStats: m.VipStats, BackendStats: m.BackendStats}
}

// LBMapNames are the names of the maps LBMapsFrom needs.
func LBMapNames() []string {
	return []string{DatapathMapVips, DatapathMapMaglev, DatapathMapBackends, DatapathMapAllow, DatapathMapSettings,
		DatapathMapDecapAddrs, DatapathMapNexthops, DatapathMapVipStats, DatapathMapBackendStats}
}

// LBMapsFrom picks the LB maps out of a collection's map set.
func LBMapsFrom(maps map[string]*ebpf.Map) (LBMaps, error) {
	l := LBMaps{Vips: maps[DatapathMapVips], Maglev: maps[DatapathMapMaglev], Backends: maps[DatapathMapBackends],
		Allow: maps[DatapathMapAllow], Settings: maps[DatapathMapSettings], DecapAddrs: maps[DatapathMapDecapAddrs],
		Nexthops: maps[DatapathMapNexthops], VipStats: maps[DatapathMapVipStats], BackendStats: maps[DatapathMapBackendStats]}
	if l.Vips == nil || l.Maglev == nil || l.Backends == nil || l.Allow == nil || l.Settings == nil ||
		l.DecapAddrs == nil || l.Nexthops == nil || l.VipStats == nil || l.BackendStats == nil {
		return LBMaps{}, errors.New("datapath collection lacks load-balancer maps")
	}
	return l, nil
}

// LB writes services, backends, Maglev tables, allow lists, settings and
// decap addresses into the LB maps in their C layout. It holds no policy:
// the control plane (lb/) decides what to program, tests and benchmarks use
// it directly. It does not own the maps.
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

// Settings are the global LB settings in Go terms.
type Settings struct {
	// Src6 is the outer IPv6 source: the address, and the bits after the
	// prefix length (at most the last 32) vary with the flow hash. Invalid
	// means unset: IPv6-outer packets are dropped (DROP_NO_SOURCE).
	Src6 netip.Prefix
	// Src4 likewise for IPv4-in-IPv4.
	Src4 netip.Prefix
	// HashSeed seeds the flow hash; equal on every LB node.
	HashSeed uint32
	// MTU, if not 0, caps the outer IP packet length below the FIB MTU.
	MTU uint32
	// DisablePTB turns off generated ICMP too big / frag needed.
	DisablePTB bool
	// NexthopTTL is how long a CPU reuses a backend's FIB result,
	// rounded up to kernel ticks (jiffies); 0 means 25 ticks (25 ms at
	// HZ=1000, 100 ms at HZ=250).
	NexthopTTL time.Duration
}

func hostMask32(prefixBits, addrBits int) uint32 {
	host := addrBits - prefixBits
	switch {
	case host <= 0:
		return 0
	case host >= 32:
		return 0xffffffff
	default:
		return 1<<host - 1
	}
}

// jiffy returns the kernel tick (1/HZ): the resolution of the coarse
// clocks is exactly one tick.
func jiffy() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		return 0, fmt.Errorf("kernel tick: %w", err)
	}
	d := time.Duration(ts.Nano())
	if d <= 0 || d > time.Second {
		return 0, fmt.Errorf("kernel tick: implausible coarse clock resolution %s", d)
	}
	return d, nil
}

// beU32 returns the uint32 whose little-endian memory holds v in network order.
func beU32(v uint32) uint32 { return bits.ReverseBytes32(v) }

// SetSettings writes the settings.
func (l *LB) SetSettings(s Settings) error {
	var v DatapathLbSettings
	if s.Src6.IsValid() {
		if !s.Src6.Addr().Is6() || s.Src6.Addr().Is4In6() {
			return fmt.Errorf("settings: src6 %s is not IPv6", s.Src6)
		}
		v.Src6 = s.Src6.Addr().As16()
		v.Src6Mask = beU32(hostMask32(s.Src6.Bits(), 128))
		v.Flags |= uint32(DatapathSettingsFlagsSETTINGS_F_SRC6)
	}
	if s.Src4.IsValid() {
		if !s.Src4.Addr().Is4() {
			return fmt.Errorf("settings: src4 %s is not IPv4", s.Src4)
		}
		a := s.Src4.Addr().As4()
		v.Src4 = binary.LittleEndian.Uint32(a[:])
		v.Src4Mask = beU32(hostMask32(s.Src4.Bits(), 32))
		v.Flags |= uint32(DatapathSettingsFlagsSETTINGS_F_SRC4)
	}
	if s.DisablePTB {
		v.Flags |= uint32(DatapathSettingsFlagsSETTINGS_F_NO_PTB)
	}
	v.HashSeed = s.HashSeed
	v.Mtu = s.MTU
	if s.NexthopTTL < 0 || s.NexthopTTL > time.Hour {
		return fmt.Errorf("settings: next-hop cache lifetime %s out of range", s.NexthopTTL)
	}
	if s.NexthopTTL > 0 {
		tick, err := jiffy()
		if err != nil {
			return fmt.Errorf("settings: %w", err)
		}
		v.NexthopTtl = uint32((s.NexthopTTL + tick - 1) / tick)
	}
	if err := l.m.Settings.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	return nil
}

// OuterSource returns the outer source address the datapath uses for a
// flow hash under s (for tests and tracing).
func (s Settings) OuterSource(hash uint64, ipv4 bool) netip.Addr {
	hb := uint32(hash >> 32) // in memory order, like the C code
	if ipv4 {
		a := s.Src4.Addr().As4()
		base := binary.LittleEndian.Uint32(a[:])
		m := beU32(hostMask32(s.Src4.Bits(), 32))
		binary.LittleEndian.PutUint32(a[:], base&^m|hb&m)
		return netip.AddrFrom4(a)
	}
	a := s.Src6.Addr().As16()
	base := binary.LittleEndian.Uint32(a[12:])
	m := beU32(hostMask32(s.Src6.Bits(), 128))
	binary.LittleEndian.PutUint32(a[12:], base&^m|hb&m)
	return netip.AddrFrom16(a)
}

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

// AddDecapAddr makes addr a decap address: tunnel packets to it are
// decapsulated and passed to the kernel.
func (l *LB) AddDecapAddr(addr netip.Addr) error {
	k := DatapathDecapKey{Addr: Addr16(addr)}
	if err := l.m.DecapAddrs.Put(&k, uint32(0)); err != nil {
		return fmt.Errorf("add decap address %s: %w", addr, err)
	}
	return nil
}

// DeleteDecapAddr removes a decap address.
func (l *LB) DeleteDecapAddr(addr netip.Addr) error {
	k := DatapathDecapKey{Addr: Addr16(addr)}
	if err := l.m.DecapAddrs.Delete(&k); err != nil {
		return fmt.Errorf("delete decap address %s: %w", addr, err)
	}
	return nil
}

// String returns the stat name of a drop reason, e.g. "no_backend": the C
// enumerator's name (from the object's BTF) without its prefix, lower case.
func (r DatapathDropReason) String() string {
	if n, ok := enumNames()["drop_reason"][uint64(r)]; ok {
		return n
	}
	return fmt.Sprintf("drop_reason(%d)", uint32(r))
}

// DropReasons returns every drop reason in index order.
func DropReasons() []DatapathDropReason {
	out := make([]DatapathDropReason, 0, DatapathDropReasonDROP_MAX)
	for r := DatapathDropReason(0); r < DatapathDropReasonDROP_MAX; r++ {
		out = append(out, r)
	}
	return out
}

// String returns the stat name of an LB event counter, e.g. "ct_hit".
func (s DatapathLbStat) String() string {
	if n, ok := enumNames()["lb_stat"][uint64(s)]; ok {
		return n
	}
	return fmt.Sprintf("lb_stat(%d)", uint32(s))
}

// LBStats returns every LB event counter in index order.
func LBStats() []DatapathLbStat {
	out := make([]DatapathLbStat, 0, DatapathLbStatLB_STAT_MAX)
	for s := DatapathLbStat(0); s < DatapathLbStatLB_STAT_MAX; s++ {
		out = append(out, s)
	}
	return out
}

// enumNames reads the enumerator names of drop_reason and lb_stat from the
// embedded object's BTF, so the names follow the C enums without a second
// list: DROP_NO_BACKEND is "no_backend", LB_STAT_CT_HIT "ct_hit".
var enumNames = sync.OnceValue(func() map[string]map[uint64]string {
	out := map[string]map[uint64]string{}
	spec, err := LoadDatapath()
	if err != nil {
		return out
	}
	for name, prefix := range map[string]string{"drop_reason": "DROP_", "lb_stat": "LB_STAT_"} {
		var e *btf.Enum
		if err := spec.Types.TypeByName(name, &e); err != nil {
			continue
		}
		m := map[uint64]string{}
		for _, v := range e.Values {
			if strings.HasSuffix(v.Name, "_MAX") {
				continue
			}
			m[v.Value] = strings.ToLower(strings.TrimPrefix(v.Name, prefix))
		}
		out[name] = m
	}
	return out
})
