package daemon

import (
	"fmt"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/lb"
)

// counters reads the packets and bytes of the ids given, summed over CPUs.
type counters struct {
	vips, backends map[uint32]bpf.DatapathCounter
}

// readCounters reads the counters of ids (and, with backends, of their
// backends) from the data plane's per-CPU maps.
func (c *lbComponent) readCounters(ids []lb.ServiceIDs) (counters, error) {
	var vipIDs, backendIDs []uint32
	for _, s := range ids {
		vipIDs = append(vipIDs, s.VIPID)
		for _, b := range s.Backends {
			backendIDs = append(backendIDs, b.ID)
		}
	}
	var out counters
	var err error
	if out.vips, err = c.prog.VIPCounters(vipIDs); err != nil {
		return counters{}, fmt.Errorf("lb traffic: %w", err)
	}
	if out.backends, err = c.prog.BackendCounters(backendIDs); err != nil {
		return counters{}, fmt.Errorf("lb traffic: %w", err)
	}
	return out, nil
}

// traffic reads the packets and bytes of the services match picks (nil:
// all), with their backends' when backends is set, summed over CPUs. Only
// services and backends programmed now (with an id) are reported.
func (c *lbComponent) traffic(match func(*lb.Service) bool, backends bool) ([]api.LBServiceStats, error) {
	if c.prog == nil {
		return nil, fmt.Errorf("lb traffic: %w (no data plane)", api.ErrNotConfigured)
	}
	if c.m == nil {
		return []api.LBServiceStats{}, nil
	}
	ids := c.m.IDs(match, backends)
	cs, err := c.readCounters(ids)
	if err != nil {
		return nil, err
	}
	out := make([]api.LBServiceStats, 0, len(ids))
	for _, s := range ids {
		v := cs.vips[s.VIPID]
		ss := api.LBServiceStats{Name: s.Name, VIP: s.VIP, Port: s.Port, Protocol: s.Protocol, Packets: v.Packets, Bytes: v.Bytes}
		if backends {
			ss.Backends = make([]api.LBBackendStats, 0, len(s.Backends))
			for _, b := range s.Backends {
				bc := cs.backends[b.ID]
				ss.Backends = append(ss.Backends, api.LBBackendStats{Address: b.Address, Packets: bc.Packets, Bytes: bc.Bytes})
			}
		}
		out = append(out, ss)
	}
	return out, nil
}
