package config

import (
	"net/netip"
	"slices"
)

// servicePools returns the pools a service's VIP may come from: the one
// vip-pool names, else every pool of kind "service".
func (c *Config) servicePools(s *Service) []Pool {
	var out []Pool
	for _, p := range c.IPAM.Pools {
		if p.Kind == "service" && (s.VIPPool == "" || p.Name == s.VIPPool) {
			out = append(out, p)
		}
	}
	return out
}

// PoolVIPFamily is the family of the VIP aird allocates for a service
// without vip: "ipv4" when a backend or an allow-sources range is IPv4 (an
// IPv6 VIP cannot reach IPv4 backends), else "ipv6" when the service's
// pools have an IPv6 prefix, else "ipv4".
func (c *Config) PoolVIPFamily(s *Service) string {
	for _, b := range s.Backends {
		if b.Address.Is4() {
			return "ipv4"
		}
	}
	for _, p := range s.AllowSources {
		if p.Addr().Is4() {
			return "ipv4"
		}
	}
	for _, p := range c.servicePools(s) {
		if slices.ContainsFunc(p.Prefixes, func(q netip.Prefix) bool { return q.Addr().Is6() }) {
			return "ipv6"
		}
	}
	return "ipv4"
}

// PoolVIPFits reports whether addr may serve as the pool VIP of s: inside
// one of its pools and of the family PoolVIPFamily chooses.
func (c *Config) PoolVIPFits(s *Service, addr netip.Addr) bool {
	if (addr.Is4() && c.PoolVIPFamily(s) != "ipv4") || (addr.Is6() && c.PoolVIPFamily(s) != "ipv6") {
		return false
	}
	for _, p := range c.servicePools(s) {
		if slices.ContainsFunc(p.Prefixes, func(q netip.Prefix) bool { return q.Contains(addr) }) {
			return true
		}
	}
	return false
}

// poolVIP checks a service without vip: a service pool must exist (the one
// vip-pool names, if any) with a prefix of the VIP's family.
func (v *validator) poolVIP(path string, s *Service) {
	if !v.vipPoolKey(path, s) {
		return
	}
	pools := v.c.servicePools(s)
	if len(pools) == 0 {
		v.errf(path+".vip", "vip is required: there is no [[ipam.pools]] of kind \"service\" to allocate one from")
		return
	}
	fam := v.c.PoolVIPFamily(s)
	for _, p := range pools {
		for _, q := range p.Prefixes {
			if (q.Addr().Is4() && fam == "ipv4") || (q.Addr().Is6() && fam == "ipv6") {
				return
			}
		}
	}
	where, what := path+".vip", "no pool of kind \"service\" has"
	if s.VIPPool != "" {
		where, what = path+".vip-pool", "pool \""+s.VIPPool+"\" has"
	}
	v.errf(where, "the VIP allocated for this service must be IPv4 (it has IPv4 backends or allow-sources) but %s no IPv4 prefix", what)
}

// explicitVIP checks a service with vip: inside a service pool (the one
// vip-pool names, if any).
func (v *validator) explicitVIP(path string, s *Service) {
	if !v.vipPoolKey(path, s) {
		return
	}
	if v.poolOf(s.VIP, "service") == nil {
		v.errf(path+".vip", "VIP %s is outside every pool of kind \"service\" in [[ipam.pools]]", s.VIP)
		return
	}
	if s.VIPPool != "" && v.poolOf(s.VIP, "service").Name != s.VIPPool {
		v.errf(path+".vip", "VIP %s is outside pool %q (vip-pool)", s.VIP, s.VIPPool)
	}
}

// vipPoolKey checks that vip-pool, when set, names a pool of kind
// "service".
func (v *validator) vipPoolKey(path string, s *Service) bool {
	if s.VIPPool == "" {
		return true
	}
	for _, p := range v.c.IPAM.Pools {
		if p.Name == s.VIPPool {
			if p.Kind != "service" {
				v.errf(path+".vip-pool", "pool %q is of kind %q; a VIP comes from a pool of kind \"service\"", s.VIPPool, p.Kind)
				return false
			}
			return true
		}
	}
	v.errf(path+".vip-pool", "no [[ipam.pools]] named %q", s.VIPPool)
	return false
}
