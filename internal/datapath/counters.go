package datapath

import (
	"fmt"

	"github.com/aird-net/aird/bpf"
)

// VIPCounters returns, per vip id in ids, the packets and bytes the load
// balancer picked a backend for (a service's id) or answered (an address
// entry's id: echo requests), summed over CPUs (vip_stats).
// The counts live in a pinned map, so they survive restarts.
func (d *Datapath) VIPCounters(ids []uint32) (map[uint32]bpf.DatapathCounter, error) {
	return d.counters(bpf.DatapathMapVipStats, ids)
}

// BackendCounters returns, per backend id in ids, the packets and bytes the
// load balancer sent to that backend, summed over CPUs (backend_stats).
func (d *Datapath) BackendCounters(ids []uint32) (map[uint32]bpf.DatapathCounter, error) {
	return d.counters(bpf.DatapathMapBackendStats, ids)
}

// counters reads through a clone of the map, so a scrape of many ids does
// not hold the datapath's lock.
func (d *Datapath) counters(name string, ids []uint32) (map[uint32]bpf.DatapathCounter, error) {
	m, err := d.Map(name)
	if err != nil {
		return nil, fmt.Errorf("%s counters: %w", name, err)
	}
	defer m.Close()
	c, err := bpf.SumCounters(m, ids)
	if err != nil {
		return nil, fmt.Errorf("%s counters: %w", name, err)
	}
	return c, nil
}
