package daemon

import (
	"fmt"

	"github.com/aird-net/aird/internal/api"
)

// traffic reads the packets and bytes of every programmed service and its
// backends from the data plane's per-CPU maps, summed over CPUs. Only ids
// the lb programmer has assigned now are read: a service or backend that is
// not programmed is left out.
func (c *lbComponent) traffic() ([]api.LBServiceStats, error) {
	if c.prog == nil {
		return nil, fmt.Errorf("lb traffic: %w (no data plane)", api.ErrNotConfigured)
	}
	if c.m == nil {
		return []api.LBServiceStats{}, nil
	}
	ids := c.m.IDs()
	var vipIDs, backendIDs []uint32
	for _, s := range ids {
		vipIDs = append(vipIDs, s.VIPID)
		for _, b := range s.Backends {
			backendIDs = append(backendIDs, b.ID)
		}
	}
	vips, err := c.prog.VIPCounters(vipIDs)
	if err != nil {
		return nil, fmt.Errorf("lb traffic: %w", err)
	}
	backends, err := c.prog.BackendCounters(backendIDs)
	if err != nil {
		return nil, fmt.Errorf("lb traffic: %w", err)
	}
	out := make([]api.LBServiceStats, 0, len(ids))
	for _, s := range ids {
		v := vips[s.VIPID]
		ss := api.LBServiceStats{Name: s.Name, VIP: s.VIP, Port: s.Port, Protocol: s.Protocol,
			Packets: v.Packets, Bytes: v.Bytes, Backends: make([]api.LBBackendStats, 0, len(s.Backends))}
		for _, b := range s.Backends {
			bc := backends[b.ID]
			ss.Backends = append(ss.Backends, api.LBBackendStats{Address: b.Address, Packets: bc.Packets, Bytes: bc.Bytes})
		}
		out = append(out, ss)
	}
	return out, nil
}
