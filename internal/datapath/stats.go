package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// Counter is a packet and byte count.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// FamilyStats returns the packets and bytes the pipeline has seen on all
// uplinks per family, summed over CPUs, keyed "ipv4", "ipv6", "other" and
// "malformed". The counts live in a pinned map, so they survive restarts.
func (d *Datapath) FamilyStats() (map[string]Counter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return nil, errors.New("family stats: datapath is closed")
	}
	m := d.objs.Pipeline.FamilyStats
	out := make(map[string]Counter, len(bpf.Families()))
	for _, f := range bpf.Families() {
		var perCPU []bpf.DatapathFamilyCounter
		key := uint32(f)
		if err := m.Lookup(&key, &perCPU); err != nil {
			return nil, fmt.Errorf("family stats: lookup %s: %w", f, err)
		}
		var c Counter
		for _, v := range perCPU {
			c.Packets += v.Packets
			c.Bytes += v.Bytes
		}
		out[f.String()] = c
	}
	return out, nil
}

// TablePinDir is where the load balancer's control plane pins its Maglev
// tables (the inner maps of maglev), below the pin path: Teardown removes
// them with the rest.
func (d *Datapath) TablePinDir() string { return d.pins.tablesDir() }

// LBMaps returns the lb stage's maps for their one writer, the load
// balancer's control plane (lb.Programmer through bpf.LB). The maps are
// pinned, so what it writes survives restarts; they stay owned by the
// datapath and are valid until Close.
func (d *Datapath) LBMaps() (bpf.LBMaps, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return bpf.LBMaps{}, errors.New("lb maps: datapath is closed")
	}
	return d.objs.LB, nil
}

// SetSettings writes the pipeline's settings (outer sources, hash seed,
// too-big switch, ...).
func (d *Datapath) SetSettings(s bpf.Settings) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return errors.New("settings: datapath is closed")
	}
	return d.node.SetSettings(s)
}

// SetLBIdle says whether no service is configured, so that the lb stage
// looks nothing up (bpf.Node.SetLBIdle): cleared before the first service
// is written, set only once none is left.
func (d *Datapath) SetLBIdle(idle bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return errors.New("lb idle: datapath is closed")
	}
	return d.node.SetLBIdle(idle)
}

// LBIdle reports whether the lb stage is idle (SETTINGS_F_LB_IDLE in the
// settings the data path reads).
func (d *Datapath) LBIdle() (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return false, errors.New("lb idle: datapath is closed")
	}
	var v bpf.DatapathPipelineSettings
	if err := d.objs.Pipeline.Settings.Lookup(uint32(0), &v); err != nil {
		return false, fmt.Errorf("lb idle: read settings: %w", err)
	}
	return v.Flags&uint32(bpf.DatapathSettingsFlagsSETTINGS_F_LB_IDLE) != 0, nil
}

// SetNodeAddrs makes addrs the node's own addresses in the data plane:
// tunnel packets to them are decapsulated.
func (d *Datapath) SetNodeAddrs(addrs []netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return errors.New("node addresses: datapath is closed")
	}
	return d.node.SetAddrs(addrs)
}

// SetTunnelSources makes prefixes the outer sources tunnel packets are
// accepted from; none: no tunnel packet is decapsulated.
func (d *Datapath) SetTunnelSources(prefixes []netip.Prefix) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return errors.New("tunnel sources: datapath is closed")
	}
	return d.node.SetTunnelSources(prefixes)
}

// SetLocalAddrs makes addrs the node's local addresses in the data plane:
// the inner destinations tunnel packets to the node may have.
func (d *Datapath) SetLocalAddrs(addrs []netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return errors.New("local addresses: datapath is closed")
	}
	return d.node.SetLocalAddrs(addrs)
}

// LBStats returns the pipeline's event counters (conntrack hits, misses
// and inserts, TX/redirect, too-big relayed/generated, decap, probes, ...)
// summed over CPUs, keyed by name ("ct_hit", ...).
func (d *Datapath) LBStats() (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, s := range bpf.LBStats() {
		v, err := d.sumPerCPU(func(o *bpf.Objects) *ebpf.Map { return o.Pipeline.Events }, uint32(s))
		if err != nil {
			return nil, fmt.Errorf("lb stats: %w", err)
		}
		out[s.String()] = v
	}
	return out, nil
}

// DropStats returns the packets the pipeline's stages dropped, by reason
// ("no_backend", "not_allowed", ...), summed over CPUs.
func (d *Datapath) DropStats() (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, r := range bpf.DropReasons() {
		v, err := d.sumPerCPU(func(o *bpf.Objects) *ebpf.Map { return o.Pipeline.Drops }, uint32(r))
		if err != nil {
			return nil, fmt.Errorf("drop stats: %w", err)
		}
		out[r.String()] = v
	}
	return out, nil
}

func (d *Datapath) sumPerCPU(pick func(*bpf.Objects) *ebpf.Map, key uint32) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return 0, errors.New("datapath is closed")
	}
	var per []uint64
	m := pick(d.objs)
	if err := m.Lookup(&key, &per); err != nil {
		return 0, fmt.Errorf("lookup %s[%d]: %w", m, key, err)
	}
	var s uint64
	for _, v := range per {
		s += v
	}
	return s, nil
}
