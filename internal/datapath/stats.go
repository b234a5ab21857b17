package datapath

import (
	"errors"
	"fmt"
	"net/netip"

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
	c, err := d.counters()
	if err != nil {
		return nil, fmt.Errorf("family stats: %w", err)
	}
	out := make(map[string]Counter, len(bpf.Families()))
	for _, f := range bpf.Families() {
		out[f.String()] = Counter{Packets: c.Family[f].Packets, Bytes: c.Family[f].Bytes}
	}
	return out, nil
}

// counters reads the pipeline's counters (pipeline_stats) summed over CPUs.
func (d *Datapath) counters() (bpf.DatapathPipelineCounters, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return bpf.DatapathPipelineCounters{}, errors.New("datapath is closed")
	}
	return bpf.SumPipelineCounters(d.objs.Pipeline.Stats)
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
	c, err := d.counters()
	if err != nil {
		return nil, fmt.Errorf("lb stats: %w", err)
	}
	out := make(map[string]uint64, len(bpf.LBStats()))
	for _, s := range bpf.LBStats() {
		out[s.String()] = c.Events[s]
	}
	return out, nil
}

// DropStats returns the packets the pipeline's stages dropped, by reason
// ("no_backend", "not_allowed", ...), summed over CPUs.
func (d *Datapath) DropStats() (map[string]uint64, error) {
	c, err := d.counters()
	if err != nil {
		return nil, fmt.Errorf("drop stats: %w", err)
	}
	out := make(map[string]uint64, len(bpf.DropReasons()))
	for _, r := range bpf.DropReasons() {
		out[r.String()] = c.Drops[r]
	}
	return out, nil
}
