package config

import "net/netip"

// Limits of the load balancer's data plane that a configuration must fit
// in (the data plane's own constants; a daemon test keeps them equal).
const (
	// MaxLBIDs bounds lb.max-vips and lb.max-backends (bpf.MaxIDs).
	MaxLBIDs = 1 << 20
	// MaxServiceBackends is the most backends one service may have: a
	// Maglev slot names its backend in 16 bits (bpf.MaglevMaxBackends).
	MaxServiceBackends = 65535
	// MaxAllowEntries is the room of the allow lists over all services.
	MaxAllowEntries = 65536
)

// lbLimits checks that the services fit in the data plane sized by [lb]:
// one vip id per service, one backend id per distinct backend address,
// the backends of a service, the allow-list entries. Each error names the
// first entry over the limit.
func (v *validator) lbLimits() {
	l := &v.c.LB
	vipsOK := v.intIn("lb.max-vips", int64(l.MaxVIPs), 1, MaxLBIDs)
	backendsOK := v.intIn("lb.max-backends", int64(l.MaxBackends), 1, MaxLBIDs)
	if vipsOK && len(v.c.Services) > l.MaxVIPs {
		v.errf(indexPath("services", l.MaxVIPs), "%d services exceed lb.max-vips = %d (one vip id per service); raise lb.max-vips",
			len(v.c.Services), l.MaxVIPs)
	}
	seen := map[netip.Addr]bool{}
	allow := 0
	for i := range v.c.Services {
		s := &v.c.Services[i]
		path := indexPath("services", i)
		if len(s.Backends) > MaxServiceBackends {
			v.errf(indexPath(path+".backends", MaxServiceBackends), "%d backends: a service has at most %d", len(s.Backends), MaxServiceBackends)
		}
		for j, b := range s.Backends {
			if !b.Address.IsValid() || seen[b.Address] {
				continue
			}
			seen[b.Address] = true
			if backendsOK && len(seen) == l.MaxBackends+1 {
				v.errf(indexPath(path+".backends", j)+".address",
					"backend %s is distinct backend address number %d, over lb.max-backends = %d (one backend id per address); raise lb.max-backends",
					b.Address, len(seen), l.MaxBackends)
			}
		}
		for j := range s.AllowSources {
			if allow++; allow == MaxAllowEntries+1 {
				v.errf(indexPath(path+".allow-sources", j), "allow-sources entry number %d: the data plane holds %d over all services",
					allow, MaxAllowEntries)
			}
		}
	}
}
