package ipam

import (
	"math/big"
	"net/netip"
)

// PoolStatus is one pool's size and use.
type PoolStatus struct {
	Name     string         `json:"name"`
	Kind     Kind           `json:"kind"`
	Prefixes []netip.Prefix `json:"prefixes"`
	// Size is the number of addresses Allocate may hand out (the first
	// and reserved addresses are not counted); it can exceed 2^64.
	Size *big.Int `json:"size"`
	// Used is the number of allocations inside the pool, by family.
	Used map[Family]int `json:"used"`
}

// Pools returns every pool with its size and the allocations in it, in
// configuration order.
func (a *Allocator) Pools() []PoolStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]PoolStatus, 0, len(a.pools))
	idx := map[string]int{}
	for _, p := range a.pools {
		size := new(big.Int)
		for _, q := range p.Prefixes {
			size.Add(size, capacity(q))
		}
		idx[p.Name] = len(out)
		out = append(out, PoolStatus{Name: p.Name, Kind: p.Kind, Prefixes: append([]netip.Prefix{}, p.Prefixes...),
			Size: size, Used: map[Family]int{IPv6: 0, IPv4: 0}})
	}
	for addr, al := range a.byAddr {
		if p := a.poolOf(addr); p != nil {
			out[idx[p.Name]].Used[al.Family]++
		}
	}
	return out
}
