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

// PipelineStats is one reading of the pipeline's counters
// (pipeline_stats) summed over CPUs: its families, events and drops are of
// the same moment, and a reader that reports all three (a scrape) reads
// the per-CPU map once. The counts live in a pinned map, so they survive
// restarts.
type PipelineStats struct {
	c bpf.DatapathPipelineCounters
}

// PipelineStats reads the pipeline's counters once.
func (d *Datapath) PipelineStats() (PipelineStats, error) {
	c, err := d.counters()
	if err != nil {
		return PipelineStats{}, fmt.Errorf("pipeline stats: %w", err)
	}
	return PipelineStats{c: c}, nil
}

// Families returns the packets and bytes the pipeline has seen on all
// uplinks per family, keyed "ipv4", "ipv6", "other" and "malformed".
func (s PipelineStats) Families() map[string]Counter {
	out := make(map[string]Counter, len(bpf.Families()))
	for _, f := range bpf.Families() {
		out[f.String()] = Counter{Packets: s.c.Family[f].Packets, Bytes: s.c.Family[f].Bytes}
	}
	return out
}

// Events returns the pipeline's event counters (conntrack hits, misses
// and inserts, TX/redirect, too-big relayed/generated, decap, probes, ...)
// keyed by name ("ct_hit", ...).
func (s PipelineStats) Events() map[string]uint64 {
	out := make(map[string]uint64, len(bpf.LBStats()))
	for _, e := range bpf.LBStats() {
		out[e.String()] = s.c.Events[e]
	}
	return out
}

// Drops returns the packets the pipeline's stages dropped, by reason
// ("no_backend", "not_allowed", ...).
func (s PipelineStats) Drops() map[string]uint64 {
	out := make(map[string]uint64, len(bpf.DropReasons()))
	for _, r := range bpf.DropReasons() {
		out[r.String()] = s.c.Drops[r]
	}
	return out
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
