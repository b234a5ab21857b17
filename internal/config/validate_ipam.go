package config

import (
	"net/netip"
)

// prefixOwner remembers which key a validated prefix came from, to name both
// sides of an overlap.
type prefixOwner struct {
	prefix netip.Prefix
	path   string
}

func (v *validator) ipam() {
	var all []prefixOwner
	count := 0 // pool prefixes: they are compared pairwise
	names := map[string]int{}
	for i, pool := range v.c.IPAM.Pools {
		path := indexPath("ipam.pools", i)
		if pool.Name == "" {
			v.errf(path+".name", "pool name is required")
		} else if j, dup := names[pool.Name]; dup {
			v.errf(path+".name", "duplicate pool name %q (also ipam.pools[%d])", pool.Name, j)
		} else {
			names[pool.Name] = i
		}
		v.oneOf(path+".kind", pool.Kind, "pod", "vm", "service")
		if len(pool.Prefixes) == 0 {
			v.errf(path+".prefixes", "a pool needs at least one prefix")
		}
		for k, p := range pool.Prefixes {
			pp := indexPath(path+".prefixes", k)
			if count++; count == MaxPoolPrefixes+1 {
				v.errf(pp, "more than %d pool prefixes in [[ipam.pools]]; the limit is %d", MaxPoolPrefixes, MaxPoolPrefixes)
			}
			if v.prefix(pp, p) && count <= MaxPoolPrefixes {
				all = v.noOverlap(all, prefixOwner{p, pp})
			}
		}
	}
	var pods []prefixOwner
	for i, p := range v.c.IPAM.PodPrefixes {
		pp := indexPath("ipam.pod-prefixes", i)
		if i == MaxPoolPrefixes {
			v.errf(pp, "more than %d pod prefixes; the limit is %d", MaxPoolPrefixes, MaxPoolPrefixes)
		}
		if !v.prefix(pp, p) {
			continue
		}
		if i < MaxPoolPrefixes {
			pods = v.noOverlap(pods, prefixOwner{p, pp})
		}
		if v.poolOf(p.Addr(), "pod") == nil || !v.poolPrefixCovers(p, "pod") {
			v.errf(pp, "pod prefix %s is not inside any pool of kind \"pod\"", p)
		}
	}
}

// noOverlap reports p if it overlaps an earlier prefix and returns the list
// with p added.
func (v *validator) noOverlap(seen []prefixOwner, p prefixOwner) []prefixOwner {
	for _, q := range seen {
		if q.prefix.Overlaps(p.prefix) {
			v.errf(p.path, "prefix %s overlaps %s (%s)", p.prefix, q.prefix, q.path)
			return seen
		}
	}
	return append(seen, p)
}

// poolOf returns the pool of the given kind that holds a, or nil.
func (v *validator) poolOf(a netip.Addr, kind string) *Pool {
	if i := v.poolIndex().holder(a, kind, a.BitLen()); i >= 0 {
		return &v.c.IPAM.Pools[i]
	}
	return nil
}

// poolPrefixCovers reports whether a pool of the kind wholly contains p.
func (v *validator) poolPrefixCovers(p netip.Prefix, kind string) bool {
	return v.poolIndex().holder(p.Addr(), kind, p.Bits()) >= 0
}

func (v *validator) poolIndex() *poolIndex {
	if v.pools == nil {
		v.pools = newPoolIndex(v.c.IPAM.Pools)
	}
	return v.pools
}
