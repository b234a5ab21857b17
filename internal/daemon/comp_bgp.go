package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"

	"github.com/aird-net/aird/bgp"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
)

// bgpComponent follows [bgp] (and the node addresses and pod prefixes it
// advertises): it owns the speaker and tells it what to advertise — the pod
// prefixes and the VIPs the load balancer says are serving.
type bgpComponent struct {
	log *slog.Logger

	mu          sync.Mutex
	sp          *bgp.Speaker
	cfg         *config.Config
	vips        []netip.Addr
	hosts       []netip.Addr       // VM endpoints' addresses: announced as host routes
	drainCancel context.CancelFunc // a drain in progress
	conflicts   map[netip.Prefix]api.PodPrefixConflict
	stopWatch   chan struct{} // stops watchPodConflicts
}

func (c *bgpComponent) name() string { return "bgp" }
func (c *bgpComponent) sections() []string {
	return []string{config.SectionBGP, config.SectionNode, config.SectionIPAM, config.SectionServices}
}

func (c *bgpComponent) apply(old, new *config.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case new.BGP == nil && c.sp != nil:
		if err := c.sp.Stop(bgp.StopShutdown); err != nil {
			c.log.Warn("bgp stop", "err", err)
		}
		c.sp = nil
		c.stopWatching()
	case new.BGP != nil && c.sp == nil:
		sp, err := bgp.New(bgp.Options{Config: new.BGP, Node: new.Node, Logger: c.log,
			StateDir: filepath.Dir(new.API.Socket)})
		if err != nil {
			return err
		}
		if err := sp.SetAdvertised(c.advertised(new)); err != nil {
			return err
		}
		if err := sp.Start(context.Background()); err != nil {
			return err
		}
		c.sp = sp
		c.stopWatch = make(chan struct{})
		go c.watchPodConflicts(sp, c.stopWatch)
	case new.BGP != nil:
		if old != nil && !sameBGP(old, new) {
			if err := c.sp.Apply(new.BGP, new.Node); err != nil {
				return err
			}
		}
		if err := c.sp.SetAdvertised(c.advertised(new)); err != nil {
			return err
		}
	}
	c.cfg = new
	return nil
}

// stopWatching ends watchPodConflicts; c.mu is held.
func (c *bgpComponent) stopWatching() {
	if c.stopWatch != nil {
		close(c.stopWatch)
		c.stopWatch = nil
	}
	c.conflicts = nil
}

// applyChange skips the speaker when only [[services]] changed and no
// changed or removed service has communities: the routes (the serving
// VIPs, which the load balancer reports through setServing, with the
// communities of their services) are then the same.
func (c *bgpComponent) applyChange(old, new *config.Config, ch change) error {
	if old == nil || ch.services == nil || !ch.only(c, config.SectionServices) || communitiesChange(old, new, ch.services) {
		return c.apply(old, new)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg = new
	return nil
}

// communitiesChange reports whether a service d changes or removes has
// communities, before or after.
func communitiesChange(old, new *config.Config, d *config.ServicesDelta) bool {
	for _, i := range d.Changed {
		if len(new.Services[i].Communities) > 0 {
			return true
		}
	}
	for _, i := range d.Removed {
		if len(old.Services[i].Communities) > 0 {
			return true
		}
	}
	for _, i := range d.Was {
		if i >= 0 && len(old.Services[i].Communities) > 0 {
			return true
		}
	}
	return false
}

func sameBGP(a, b *config.Config) bool {
	return config.Diff(&config.Config{BGP: a.BGP, Node: a.Node}, &config.Config{BGP: b.BGP, Node: b.Node}) == nil
}

// setServing is the load balancer's callback: the VIPs that can serve.
func (c *bgpComponent) setServing(vips []netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vips = slices.Clone(vips)
	if c.sp == nil || c.cfg == nil {
		return
	}
	if err := c.sp.SetAdvertised(c.advertised(c.cfg)); err != nil {
		c.log.Error("bgp: advertise serving VIPs", "err", err)
	}
}

// setEndpointHosts is the router's callback: the addresses of the VM
// endpoints (from pools that span nodes), announced as host routes.
func (c *bgpComponent) setEndpointHosts(hosts []netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hosts = slices.Clone(hosts)
	if c.sp == nil || c.cfg == nil {
		return
	}
	if err := c.sp.SetAdvertised(c.advertised(c.cfg)); err != nil {
		c.log.Error("bgp: advertise endpoint host routes", "err", err)
	}
}

// advertised is what the node announces: its pod prefixes and each serving
// VIP (/128 or /32) with the communities of the services on it.
func advertised(c *config.Config, serving []netip.Addr) []bgp.Route {
	if c.BGP == nil {
		return nil
	}
	var out []bgp.Route
	if c.BGP.Advertise.PodPrefixes {
		for _, p := range c.IPAM.PodPrefixes {
			out = append(out, bgp.Route{Prefix: p})
		}
	}
	if !c.BGP.Advertise.ServiceVIPs {
		return out
	}
	comms := map[netip.Addr][]string{} // of the VIPs whose services have any
	for i := range c.Services {
		s := &c.Services[i]
		for _, cm := range s.Communities {
			if !slices.Contains(comms[s.VIP], cm) {
				comms[s.VIP] = append(comms[s.VIP], cm)
			}
		}
	}
	for _, vip := range serving {
		out = append(out, bgp.Route{Prefix: netip.PrefixFrom(vip, vip.BitLen()), Communities: comms[vip]})
	}
	return out
}

func (c *bgpComponent) close(intent stopIntent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sp == nil {
		return nil
	}
	mode := bgp.StopRestart
	if intent == intentStop {
		mode = bgp.StopShutdown
	}
	if c.drainCancel != nil {
		c.drainCancel()
	}
	c.log.Info("stopping the BGP speaker", "mode", mode.String())
	c.stopWatching()
	err := c.sp.Stop(mode)
	c.sp = nil
	return err
}
