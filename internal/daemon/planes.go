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

// LBServices implements api.LBBackend.
func (d *Daemon) LBServices() ([]lb.ServiceStatus, error) {
	if d.lb.m == nil {
		return nil, fmt.Errorf("lb: %w", api.ErrNotConfigured)
	}
	return d.lb.m.Services(), nil
}

// LBDrain implements api.LBBackend.
func (d *Daemon) LBDrain(req api.LBDrain) error {
	if d.lb.m == nil {
		return fmt.Errorf("lb: %w", api.ErrNotConfigured)
	}
	return d.lb.m.SetDrained(req.Service, req.Backend, req.Drained)
}

// LBStats implements api.LBBackend.
func (d *Daemon) LBStats() (api.LBStats, error) {
	if d.dp.dp == nil {
		return api.LBStats{}, fmt.Errorf("lb: %w (no data plane)", api.ErrNotConfigured)
	}
	ev, err := d.dp.dp.LBStats()
	if err != nil {
		return api.LBStats{}, err
	}
	dr, err := d.dp.dp.DropStats()
	if err != nil {
		return api.LBStats{}, err
	}
	ss, err := d.lb.traffic()
	if err != nil {
		return api.LBStats{}, err
	}
	return api.LBStats{Events: ev, Drops: dr, Services: ss}, nil
}
