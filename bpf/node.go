package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Node writes the pipeline-wide maps: the settings, the node's own
// addresses and the probe stage's configuration. Its one user is the owner
// of the data plane (internal/datapath); stages only read these maps.
type Node struct {
	m PipelineMaps
	// uplinksAffine: the last SetUplinks listed links that all keep a
	// flow on one CPU (SETTINGS_F_UPLINKS_AFFINE is set in settings).
	uplinksAffine bool
	// lbIdle: the last SetLBIdle said no service is configured
	// (SETTINGS_F_LB_IDLE is set in settings).
	lbIdle bool
}

// NewNode returns the writer of m.
func NewNode(m PipelineMaps) *Node { return &Node{m: m} }

// SetSettings writes the settings.
func (n *Node) SetSettings(s Settings) error {
	v, err := s.value()
	if err != nil {
		return err
	}
	if n.uplinksAffine {
		v.Flags |= uint32(DatapathSettingsFlagsSETTINGS_F_UPLINKS_AFFINE)
	}
	if n.lbIdle {
		v.Flags |= uint32(DatapathSettingsFlagsSETTINGS_F_LB_IDLE)
	}
	if err := n.m.Settings.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	return nil
}

// SetAddrs makes the node's decap addresses exactly addrs: tunnel packets
// to them are decapsulated. Entries are added before stale ones go, so
// an address kept across the call never misses a packet.
func (n *Node) SetAddrs(addrs []netip.Addr) error {
	want := map[DatapathAddrKey]bool{}
	flags := uint32(DatapathNodeAddrFlagsNODE_ADDR_F_DECAP)
	for _, a := range addrs {
		k := DatapathAddrKey{Addr: Addr16(a)}
		want[k] = true
		if err := n.m.NodeAddrs.Put(&k, flags); err != nil {
			return fmt.Errorf("add node address %s: %w", a, err)
		}
	}
	var stale []DatapathAddrKey
	var k DatapathAddrKey
	var v uint32
	it := n.m.NodeAddrs.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list node addresses: %w", err)
	}
	for _, k := range stale {
		if err := n.m.NodeAddrs.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete node address %s: %w", netip.AddrFrom16(k.Addr).Unmap(), err)
		}
	}
	return nil
}

// SetTunnelSources makes prefixes exactly the outer sources tunnel packets
// are accepted from (to the node's decap addresses and to DSR endpoints);
// none: no tunnel packet is decapsulated. New entries are added before
// stale ones go.
func (n *Node) SetTunnelSources(prefixes []netip.Prefix) error {
	if len(prefixes) > int(n.m.TunnelSrcs.MaxEntries()) {
		return fmt.Errorf("tunnel sources: %d prefixes, the map holds %d", len(prefixes), n.m.TunnelSrcs.MaxEntries())
	}
	want := map[DatapathPrefixKey]bool{}
	for _, p := range prefixes {
		k, err := prefixKey(p)
		if err != nil {
			return fmt.Errorf("tunnel sources: %w", err)
		}
		want[k] = true
		if err := n.m.TunnelSrcs.Put(&k, uint32(0)); err != nil {
			return fmt.Errorf("add tunnel source %s: %w", p, err)
		}
	}
	var stale []DatapathPrefixKey
	var k DatapathPrefixKey
	var v uint32
	it := n.m.TunnelSrcs.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list tunnel sources: %w", err)
	}
	for _, k := range stale {
		if err := n.m.TunnelSrcs.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete tunnel source: %w", err)
		}
	}
	return nil
}

// TunnelSources returns the prefixes in the tunnel-source map.
func (n *Node) TunnelSources() ([]netip.Prefix, error) {
	var out []netip.Prefix
	var k DatapathPrefixKey
	var v uint32
	it := n.m.TunnelSrcs.Iterate()
	for it.Next(&k, &v) {
		out = append(out, prefixOfKey(k))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list tunnel sources: %w", err)
	}
	return out, nil
}

// prefixKey is the LPM key of p (IPv4 as IPv4-mapped, 96 + bits).
func prefixKey(p netip.Prefix) (DatapathPrefixKey, error) {
	if !p.IsValid() || p.Addr().Zone() != "" {
		return DatapathPrefixKey{}, fmt.Errorf("invalid prefix %s", p)
	}
	p = p.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return DatapathPrefixKey{Prefixlen: uint32(bits), Addr: Addr16(p.Addr())}, nil
}

func prefixOfKey(k DatapathPrefixKey) netip.Prefix {
	a := netip.AddrFrom16(k.Addr)
	bits := int(k.Prefixlen)
	if a.Is4In6() && bits >= 96 {
		return netip.PrefixFrom(a.Unmap(), bits-96)
	}
	return netip.PrefixFrom(a, bits)
}

// SetLocalAddrs makes addrs exactly the node's local addresses in the data
// plane: the inner destinations a tunnel packet to the node may have.
// Loopback addresses are left out (the kernel does not accept them from
// an uplink). New entries are added before stale ones go.
func (n *Node) SetLocalAddrs(addrs []netip.Addr) error {
	want := map[DatapathAddrKey]bool{}
	for _, a := range addrs {
		if !a.IsValid() || a.Unmap().IsLoopback() {
			continue
		}
		want[DatapathAddrKey{Addr: Addr16(a)}] = true
	}
	if len(want) > int(n.m.LocalAddrs.MaxEntries()) {
		return fmt.Errorf("local addresses: %d addresses, the map holds %d", len(want), n.m.LocalAddrs.MaxEntries())
	}
	for k := range want {
		if err := n.m.LocalAddrs.Put(&k, uint32(0)); err != nil {
			return fmt.Errorf("add local address %s: %w", netip.AddrFrom16(k.Addr).Unmap(), err)
		}
	}
	var stale []DatapathAddrKey
	var k DatapathAddrKey
	var v uint32
	it := n.m.LocalAddrs.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list local addresses: %w", err)
	}
	for _, k := range stale {
		if err := n.m.LocalAddrs.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete local address %s: %w", netip.AddrFrom16(k.Addr).Unmap(), err)
		}
	}
	return nil
}

// Addrs returns the node addresses in the map.
func (n *Node) Addrs() ([]netip.Addr, error) {
	var out []netip.Addr
	var k DatapathAddrKey
	var v uint32
	it := n.m.NodeAddrs.Iterate()
	for it.Next(&k, &v) {
		out = append(out, netip.AddrFrom16(k.Addr).Unmap())
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list node addresses: %w", err)
	}
	return out, nil
}

// SetProbeFIBIfindex writes the interface the probe program does its FIB
// lookups from (ingress perspective, like a data packet arriving there:
// forwarding must be on). 0 means lo.
func (n *Node) SetProbeFIBIfindex(ifindex uint32) error {
	v := DatapathHcConfig{FibIfindex: ifindex}
	if err := n.m.ProbeConf.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("write probe config: %w", err)
	}
	return nil
}

// ProbeFIBIfindex reads what SetProbeFIBIfindex wrote (0: lo, or never
// written).
func (n *Node) ProbeFIBIfindex() (uint32, error) {
	var v DatapathHcConfig
	if err := n.m.ProbeConf.Lookup(uint32(0), &v); err != nil {
		return 0, fmt.Errorf("read probe config: %w", err)
	}
	return v.FibIfindex, nil
}

// Uplink is one interface the pipeline runs on, as the stages see it.
type Uplink struct {
	Ifindex int
	// FlowAffine: every packet of a flow received on the link is processed
	// on one CPU (a NIC's RSS), so conntrack skips the other CPUs'
	// partitions for new flows (UPLINK_F_FLOW_AFFINE).
	FlowAffine bool
}

// SetUplinks makes links the interfaces stages may redirect frames to when
// they leave the node (the uplinks the pipeline is attached to), with
// their flags. When links are all flow-affine, settings say so
// (SETTINGS_F_UPLINKS_AFFINE) and a new flow skips the uplinks lookup: the
// flag is cleared before the uplinks change and set after, so a packet
// never skips the cross-CPU steps on a link that needs them.
func (n *Node) SetUplinks(links []Uplink) error {
	affine := len(links) > 0
	for _, l := range links {
		affine = affine && l.FlowAffine
	}
	if !affine {
		if err := n.setUplinksAffine(false); err != nil {
			return err
		}
	}
	if err := n.writeUplinks(links); err != nil {
		return err
	}
	if affine {
		return n.setUplinksAffine(true)
	}
	return nil
}

// setUplinksAffine sets or clears SETTINGS_F_UPLINKS_AFFINE in the
// settings value, keeping the rest of it.
func (n *Node) setUplinksAffine(on bool) error {
	if err := n.setFlag(DatapathSettingsFlagsSETTINGS_F_UPLINKS_AFFINE, on); err != nil {
		return err
	}
	n.uplinksAffine = on
	return nil
}

// SetLBIdle says whether no service is configured: with idle set the lb
// stage looks nothing up (SETTINGS_F_LB_IDLE), so router and host traffic
// skips the service lookup. The caller, the lb stage's control plane,
// clears it before it writes the first service and sets it only once
// vips is empty again: the flag never hides a VIP.
func (n *Node) SetLBIdle(idle bool) error {
	if err := n.setFlag(DatapathSettingsFlagsSETTINGS_F_LB_IDLE, idle); err != nil {
		return err
	}
	n.lbIdle = idle
	return nil
}

// setFlag sets or clears one flag of the settings value, keeping the rest
// of it.
func (n *Node) setFlag(f DatapathSettingsFlags, on bool) error {
	var v DatapathPipelineSettings
	if err := n.m.Settings.Lookup(uint32(0), &v); err != nil {
		return fmt.Errorf("read settings: %w", err)
	}
	flag := uint32(f)
	was := v.Flags
	if on {
		v.Flags |= flag
	} else {
		v.Flags &^= flag
	}
	if v.Flags != was {
		if err := n.m.Settings.Put(uint32(0), &v); err != nil {
			return fmt.Errorf("write settings: %w", err)
		}
	}
	return nil
}

func (n *Node) writeUplinks(links []Uplink) error {
	want := map[uint32]bool{}
	for _, l := range links {
		var flags DatapathUplinkFlags
		if l.FlowAffine {
			flags |= DatapathUplinkFlagsUPLINK_F_FLOW_AFFINE
		}
		want[uint32(l.Ifindex)] = true
		if err := n.m.Uplinks.Put(uint32(l.Ifindex), uint32(flags)); err != nil {
			return fmt.Errorf("add uplink %d: %w", l.Ifindex, err)
		}
	}
	var stale []uint32
	var k, v uint32
	it := n.m.Uplinks.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list uplinks: %w", err)
	}
	for _, k := range stale {
		if err := n.m.Uplinks.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete uplink %d: %w", k, err)
		}
	}
	return nil
}
