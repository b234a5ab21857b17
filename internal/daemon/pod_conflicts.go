package daemon

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/aird-net/aird/bgp"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
)

// podConflictInterval is how often learned routes are compared with the
// pod prefixes.
const podConflictInterval = 2 * time.Second

// podConflicts finds the pod prefixes that another speaker also announces:
// a learned route equal to or inside a pod prefix (a covering aggregate or
// default route is normal and is not a conflict).
func podConflicts(pods []netip.Prefix, learned []bgp.RouteEntry) map[netip.Prefix]api.PodPrefixConflict {
	out := map[netip.Prefix]api.PodPrefixConflict{}
	for _, p := range pods {
		for _, r := range learned {
			if r.Prefix.Addr().BitLen() == p.Addr().BitLen() && r.Prefix.Bits() >= p.Bits() && p.Contains(r.Prefix.Addr()) {
				out[p] = api.PodPrefixConflict{PodPrefix: p, Route: r.Prefix, Peer: r.Peer, PeerAddress: r.PeerAddress}
				break
			}
		}
	}
	return out
}

// watchPodConflicts compares the learned routes with the pod prefixes until
// stop is closed; a change is logged and re-advertised.
func (c *bgpComponent) watchPodConflicts(sp *bgp.Speaker, stop <-chan struct{}) {
	t := time.NewTicker(podConflictInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		learned, err := sp.Routes(bgp.RouteQuery{})
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.sp != sp || c.cfg == nil {
			c.mu.Unlock()
			return
		}
		found := podConflicts(c.cfg.IPAM.PodPrefixes, learned)
		if !maps.Equal(found, c.conflicts) {
			for p, cf := range found {
				if _, old := c.conflicts[p]; !old {
					c.log.Error("pod prefix also announced by another speaker: not advertising it", "pod_prefix", p,
						"route", cf.Route, "peer", cf.Peer, "peer_address", cf.PeerAddress)
				}
			}
			for p := range c.conflicts {
				if _, still := found[p]; !still {
					c.log.Info("pod prefix conflict resolved: advertising it again", "pod_prefix", p)
				}
			}
			c.conflicts = found
			if err := sp.SetAdvertised(c.advertised(c.cfg)); err != nil {
				c.log.Error("bgp: advertise after a pod prefix conflict change", "err", err)
			}
		}
		c.mu.Unlock()
	}
}

// advertised is what the node announces, less the pod prefixes in
// conflict. c.mu is held.
func (c *bgpComponent) advertised(cfg *config.Config) []bgp.Route {
	rs := advertised(cfg, c.vips)
	if cfg.BGP != nil && cfg.BGP.Advertise.PodPrefixes {
		for _, h := range c.hosts {
			rs = append(rs, bgp.Route{Prefix: netip.PrefixFrom(h, h.BitLen())})
		}
	}
	return slices.DeleteFunc(rs, func(r bgp.Route) bool {
		_, bad := c.conflicts[r.Prefix]
		return bad && slices.Contains(cfg.IPAM.PodPrefixes, r.Prefix)
	})
}

// podPrefixConflicts lists the conflicts found, by prefix.
func (c *bgpComponent) podPrefixConflicts() []api.PodPrefixConflict {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Collect(maps.Values(c.conflicts))
	slices.SortFunc(out, func(a, b api.PodPrefixConflict) int { return a.PodPrefix.Addr().Compare(b.PodPrefix.Addr()) })
	return out
}
