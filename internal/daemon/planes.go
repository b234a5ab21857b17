package daemon

import (
	"fmt"
	"net/netip"

	"github.com/aird-net/aird/bgp"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/lb"
)

func (c *bgpComponent) speaker() *bgp.Speaker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sp
}

// BGPNeighbors implements api.BGPBackend.
func (d *Daemon) BGPNeighbors() ([]api.BGPNeighbor, error) {
	sp := d.bgp.speaker()
	if sp == nil {
		return nil, fmt.Errorf("bgp: %w (no [bgp] section)", api.ErrNotConfigured)
	}
	ns := sp.Neighbors()
	out := make([]api.BGPNeighbor, 0, len(ns))
	for _, n := range ns {
		a := api.BGPNeighbor{
			Name: n.Name, Address: n.Address, Interface: n.Interface, BFD: n.BFD, PeerASN: n.PeerASN, LocalASN: n.LocalASN, State: n.State,
			Since: n.Since, UptimeSec: n.Uptime.Seconds(), Received: n.Received, Accepted: n.Accepted,
			Advertised: n.Advertised, MaxPrefixes: n.MaxPrefixes, Families: n.Families, LastError: n.LastError,
			ExtendedNextHop: n.ExtendedNextHop, StateSince: n.StateSince, Hint: n.Hint,
			LastNotificationSent: apiNotification(n.LastSent), LastNotificationReceived: apiNotification(n.LastReceived),
		}
		for _, f := range n.FamilyStatus {
			a.FamilyStatus = append(a.FamilyStatus, api.BGPFamilyStatus{Family: f.Family, State: f.State, NextHop: f.NextHop, Reason: f.Reason})
		}
		out = append(out, a)
	}
	return out, nil
}

func apiNotification(n *bgp.Notification) *api.BGPNotification {
	if n == nil {
		return nil
	}
	return &api.BGPNotification{Code: n.Code, Subcode: n.Subcode, Text: n.Text, At: n.At}
}

// BGPRoutes implements api.BGPBackend. A neighbor is named by its
// configured name or its address.
func (d *Daemon) BGPRoutes(q api.BGPRouteQuery) ([]api.BGPRoute, error) {
	sp := d.bgp.speaker()
	if sp == nil {
		return nil, fmt.Errorf("bgp: %w (no [bgp] section)", api.ErrNotConfigured)
	}
	bq := bgp.RouteQuery{Advertised: q.Advertised, Prefix: q.Prefix}
	if q.Neighbor != "" {
		addr, err := neighborAddr(sp, q.Neighbor)
		if err != nil {
			return nil, err
		}
		bq.Peer = addr
	}
	rs, err := sp.Routes(bq)
	if err != nil {
		return nil, err
	}
	out := []api.BGPRoute{}
	for _, r := range rs {
		if (q.Family == "ipv4" && !r.Prefix.Addr().Is4()) || (q.Family == "ipv6" && r.Prefix.Addr().Is4()) {
			continue
		}
		out = append(out, api.BGPRoute{
			Prefix: r.Prefix, Peer: r.Peer, PeerAddress: r.PeerAddress, NextHop: r.NextHop, ASPath: r.ASPath,
			Communities: r.Communities, LargeCommunities: r.LargeCommunities, Best: r.Best, Stale: r.Stale,
			Installed: r.Installed, AgeSec: r.Age.Seconds(),
		})
	}
	return out, nil
}

func neighborAddr(sp *bgp.Speaker, name string) (netip.Addr, error) {
	for _, n := range sp.Neighbors() {
		if n.Name == name || n.Address.String() == name || (n.Interface == name && n.Address.IsValid()) {
			return n.Address, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("bgp: no neighbor %q", name)
}

// LBServices implements api.LBBackend: one page of services, with their
// traffic (and their backends' when asked for).
func (d *Daemon) LBServices(q api.LBServiceQuery) (api.LBServiceList, error) {
	if d.lb.m == nil {
		return api.LBServiceList{}, fmt.Errorf("lb: %w", api.ErrNotConfigured)
	}
	l, err := d.lb.m.Services(lb.ServiceQuery{Match: lbMatch(q), After: q.After, Limit: q.Limit, Backends: q.Backends})
	if err != nil {
		return api.LBServiceList{}, err
	}
	out := api.LBServiceList{Services: make([]api.LBService, len(l.Services)), Next: l.Next}
	for i, s := range l.Services {
		out.Services[i] = lbServiceState(s)
	}
	if d.lb.prog == nil || len(l.Services) == 0 {
		return out, nil
	}
	page := make(map[string]*api.LBService, len(out.Services))
	for i := range out.Services {
		page[out.Services[i].Name] = &out.Services[i]
	}
	ids := d.lb.m.IDs(func(s *lb.Service) bool { return page[s.Name] != nil }, q.Backends)
	cs, err := d.lb.readCounters(ids)
	if err != nil {
		return api.LBServiceList{}, err
	}
	for _, sid := range ids {
		s := page[sid.Name]
		v := cs.vips[sid.VIPID]
		s.Packets, s.Bytes = &v.Packets, &v.Bytes
		byAddr := make(map[netip.Addr]uint32, len(sid.Backends))
		for _, b := range sid.Backends {
			byAddr[b.Address] = b.ID
		}
		for j := range s.Backends {
			if id, ok := byAddr[s.Backends[j].Address]; ok {
				bc := cs.backends[id]
				s.Backends[j].Packets, s.Backends[j].Bytes = &bc.Packets, &bc.Bytes
			}
		}
	}
	return out, nil
}

// lbMatch turns an API selection into the manager's.
func lbMatch(q api.LBServiceQuery) func(*lb.Service) bool {
	if q.Name == "" && q.VIP == nil {
		return nil
	}
	return func(s *lb.Service) bool { return q.Matches(s.Name, s.VIP, s.Port, s.Protocol) }
}

func lbServiceState(s lb.ServiceStatus) api.LBService {
	out := api.LBService{Name: s.Name, VIP: s.VIP, Port: s.Port, Protocol: s.Protocol, Serving: s.Serving, Usable: s.Usable, Total: s.Total}
	for _, b := range s.Backends {
		h := b.Health
		out.Backends = append(out.Backends, api.LBBackendState{Address: b.Address, Weight: b.Weight, Drained: b.Drained,
			Health: api.LBHealth{Checked: b.Checked, Healthy: h.Healthy, Known: h.Known, Via: h.Via, Fallback: h.Fallback,
				LastError: h.LastError, Since: h.Since, Checks: h.Checks, Failures: h.Failures}})
	}
	return out
}

// LBDrain implements api.LBBackend.
func (d *Daemon) LBDrain(req api.LBDrain) error {
	if d.lb.m == nil {
		return fmt.Errorf("lb: %w", api.ErrNotConfigured)
	}
	return d.lb.m.SetDrained(req.Service, req.Backend, req.Drained)
}

// LBStats implements api.LBBackend: node-wide events and drops and every
// service's traffic, or, for a selection, the selected services with their
// backends' traffic.
func (d *Daemon) LBStats(q api.LBServiceQuery) (api.LBStats, error) {
	if d.dp.dp == nil {
		return api.LBStats{}, fmt.Errorf("lb: %w (no data plane)", api.ErrNotConfigured)
	}
	match := lbMatch(q)
	ss, err := d.lb.traffic(match, match != nil)
	if err != nil {
		return api.LBStats{}, err
	}
	if match != nil {
		return api.LBStats{Services: ss}, nil
	}
	ps, err := d.dp.dp.PipelineStats()
	if err != nil {
		return api.LBStats{}, err
	}
	return api.LBStats{Events: ps.Events(), Drops: ps.Drops(), Services: ss}, nil
}
