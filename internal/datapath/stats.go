package datapath

import (
	"errors"
	"fmt"

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
