package daemon

import (
	"fmt"
	"net/netip"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/ipam"
)

// serviceOwner is the IPAM owner of a service's VIP.
func serviceOwner(name string) string { return "service/" + name }

// syncServiceVIPs makes the allocator's "service/" owners match
// [[services]] (one transaction) and fills the VIP of every service without
// one into cfg. An explicit VIP is recorded for the first service naming it
// (services on other ports share it); a VIP filled in earlier (a rollback to
// the running configuration) is asked for again as the preferred address,
// so it does not move.
func syncServiceVIPs(a *ipam.Allocator, cfg *config.Config) error {
	var wants []ipam.Want
	var idx []int // service index per want
	claimed := map[netip.Addr]bool{}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		owner := serviceOwner(s.Name)
		if s.VIP.IsValid() && !s.VIPAllocated {
			if !claimed[s.VIP] {
				claimed[s.VIP] = true
				wants = append(wants, ipam.Want{Owner: owner, Addr: s.VIP})
				idx = append(idx, i)
			}
			continue
		}
		w := ipam.Want{Owner: owner, Family: ipam.Family(cfg.PoolVIPFamily(s)), Pool: s.VIPPool, Kind: ipam.KindService}
		if s.VIPAllocated && cfg.PoolVIPFits(s, s.VIP) {
			w.Addr = s.VIP
		}
		wants = append(wants, w)
		idx = append(idx, i)
	}
	got, err := a.Sync("service/", wants)
	if err != nil {
		return fmt.Errorf("service VIPs: %w", err)
	}
	for k, al := range got {
		s := &cfg.Services[idx[k]]
		if !s.VIP.IsValid() || s.VIPAllocated {
			s.VIP, s.VIPAllocated = al.Addr, true
		}
	}
	return nil
}

// fillKnownVIPs gives services without vip the VIP they already hold in the
// store, when it still fits, without allocating anything: a reload then
// compares like with like and sees no change in [[services]] unless the
// file changed.
func (c *ipamComponent) fillKnownVIPs(cfg *config.Config) {
	a := c.allocator()
	if a == nil {
		return
	}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if s.VIP.IsValid() {
			continue
		}
		for _, al := range a.Lookup(serviceOwner(s.Name)) {
			if cfg.PoolVIPFits(s, al.Addr) {
				s.VIP, s.VIPAllocated = al.Addr, true
			}
		}
	}
}
