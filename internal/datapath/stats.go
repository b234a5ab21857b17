package datapath

import (
	"errors"
	"fmt"
	"strings"

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
	if d.coll == nil {
		return nil, errors.New("family stats: datapath is closed")
	}
	m := d.coll.Maps[bpf.MapFamilyStats]
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

// Map returns a new handle (a clone, which the caller closes) of the
// datapath map called name (bpf.DatapathMap* constants: "vips", "maglev",
// "backends", "conntrack", "allow", "settings", "decap_addrs", counters).
// The control plane programs the load balancer through these; the maps
// are pinned, so what it writes survives restarts.
func (d *Datapath) Map(name string) (*ebpf.Map, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.coll == nil {
		return nil, errors.New("map: datapath is closed")
	}
	m := d.coll.Maps[name]
	if m == nil || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("map %q: no such map in the datapath", name)
	}
	c, err := m.Clone()
	if err != nil {
		return nil, fmt.Errorf("map %q: %w", name, err)
	}
	return c, nil
}

// MaglevTableSize returns the slot count every Maglev table must have.
func (d *Datapath) MaglevTableSize() uint32 {
	return d.opts.bpfConfig().MaglevTableSizeOrDefault()
}

// LBStats returns the load balancer's event counters (conntrack hits,
// misses and inserts, TX/redirect, too-big relayed/generated, decap, ...)
// summed over CPUs, keyed by name ("ct_hit", ...).
func (d *Datapath) LBStats() (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, s := range bpf.LBStats() {
		v, err := d.sumPerCPU(bpf.DatapathMapLbStats, uint32(s))
		if err != nil {
			return nil, fmt.Errorf("lb stats: %w", err)
		}
		out[s.String()] = v
	}
	return out, nil
}

// DropStats returns the packets the load balancer and decap stages dropped,
// by reason ("no_backend", "not_allowed", ...), summed over CPUs.
func (d *Datapath) DropStats() (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, r := range bpf.DropReasons() {
		v, err := d.sumPerCPU(bpf.DatapathMapDropStats, uint32(r))
		if err != nil {
			return nil, fmt.Errorf("drop stats: %w", err)
		}
		out[r.String()] = v
	}
	return out, nil
}

func (d *Datapath) sumPerCPU(name string, key uint32) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.coll == nil {
		return 0, errors.New("datapath is closed")
	}
	var per []uint64
	if err := d.coll.Maps[name].Lookup(&key, &per); err != nil {
		return 0, fmt.Errorf("lookup %s[%d]: %w", name, key, err)
	}
	var s uint64
	for _, v := range per {
		s += v
	}
	return s, nil
}
