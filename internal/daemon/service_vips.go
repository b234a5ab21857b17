package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

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
	all := make([]int, len(cfg.Services))
	for i := range all {
		all[i] = i
	}
	wants, idx := vipWants(cfg, all, nil)
	got, err := a.Sync("service/", wants)
	if err != nil {
		return fmt.Errorf("service VIPs: %w", err)
	}
	fillVIPs(cfg, got, idx)
	return nil
}

// vipWants returns the wants of the services at positions at, in order, and the position of each want's service: an explicit VIP is
// asked for by the first service naming it unless kept(vip) (a service
// that stays holds it), a pool VIP by each service.
func vipWants(cfg *config.Config, at []int, kept func(netip.Addr) bool) ([]ipam.Want, []int) {
	var wants []ipam.Want
	var idx []int
	claimed := map[netip.Addr]bool{}
	want := func(i int) {
		s := &cfg.Services[i]
		owner := serviceOwner(s.Name)
		if s.VIP.IsValid() && !s.VIPAllocated {
			if !claimed[s.VIP] && (kept == nil || !kept(s.VIP)) {
				claimed[s.VIP] = true
				wants = append(wants, ipam.Want{Owner: owner, Addr: s.VIP})
				idx = append(idx, i)
			}
			return
		}
		w := ipam.Want{Owner: owner, Family: ipam.Family(cfg.PoolVIPFamily(s)), Pool: s.VIPPool, Kind: ipam.KindService}
		if s.VIPAllocated && cfg.PoolVIPFits(s, s.VIP) {
			w.Addr = s.VIP
		}
		wants = append(wants, w)
		idx = append(idx, i)
	}
	for _, i := range at {
		want(i)
	}
	return wants, idx
}

// vipStore is what syncChangedVIPs uses of the allocator.
type vipStore interface {
	Lookup(owner string) []ipam.Allocation
	Holder(addr netip.Addr) (ipam.Allocation, bool)
	SyncOwners(prefix string, owners []string, wants []ipam.Want) ([]ipam.Allocation, error)
}

// syncChangedVIPs is syncServiceVIPs for a reload from old to cfg that
// changes the services d names: the owners of those services alone are
// synced. A service that shares another's explicit VIP holds nothing (the
// first to name it does); when a changed or removed service held a VIP it
// no longer names, the first remaining service naming it takes it over.
func syncChangedVIPs(a vipStore, old, cfg *config.Config, d *config.ServicesDelta) error {
	if d.Empty() {
		return nil
	}
	affected := make(map[string]bool, len(d.Changed)+len(d.Removed))
	names := make(map[string]*config.Service, len(d.Changed))
	at := slices.Clone(d.Changed)
	for _, i := range d.Changed {
		affected[cfg.Services[i].Name] = true
		names[cfg.Services[i].Name] = &cfg.Services[i]
	}
	for _, i := range d.Removed {
		affected[old.Services[i].Name] = true
	}
	var freed []netip.Addr // explicit VIPs an affected service lets go
	for name := range affected {
		for _, al := range a.Lookup(serviceOwner(name)) {
			if s := names[name]; al.Reserved && (s == nil || s.VIP != al.Addr || s.VIPAllocated) {
				freed = append(freed, al.Addr)
			}
		}
	}
	if len(freed) > 0 { // who else names them: a pass over the services
		for i := range cfg.Services {
			s := &cfg.Services[i]
			if !affected[s.Name] && s.VIP.IsValid() && !s.VIPAllocated && slices.Contains(freed, s.VIP) {
				freed = slices.DeleteFunc(freed, func(x netip.Addr) bool { return x == s.VIP })
				affected[s.Name] = true
				at = append(at, i)
			}
		}
		slices.Sort(at)
	}
	owners := make([]string, 0, len(affected))
	for name := range affected {
		owners = append(owners, serviceOwner(name))
	}
	wants, idx := vipWants(cfg, at, func(vip netip.Addr) bool {
		h, held := a.Holder(vip)
		return held && h.Reserved && strings.HasPrefix(h.Owner, "service/") && !affected[strings.TrimPrefix(h.Owner, "service/")]
	})
	got, err := a.SyncOwners("service/", owners, wants)
	if err != nil {
		return fmt.Errorf("service VIPs: %w", err)
	}
	fillVIPs(cfg, got, idx)
	return nil
}

// fillVIPs gives the services at idx without an explicit VIP the
// addresses got.
func fillVIPs(cfg *config.Config, got []ipam.Allocation, idx []int) {
	for k, al := range got {
		s := &cfg.Services[idx[k]]
		if !s.VIP.IsValid() || s.VIPAllocated {
			s.VIP, s.VIPAllocated = al.Addr, true
		}
	}
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
