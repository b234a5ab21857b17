package config

import (
	"net/netip"
	"slices"
)

// poolIndex finds the pool that holds an address, or a prefix, with one map
// lookup per prefix length in use: the checks of every VIP and pod prefix
// against every pool prefix stay linear however many there are.
type poolIndex struct {
	lengths map[string][]int                // kind -> the prefix lengths its pools use, shortest first
	first   map[string]map[netip.Prefix]int // kind -> prefix -> the first pool that lists it
}

func newPoolIndex(pools []Pool) *poolIndex {
	x := &poolIndex{lengths: map[string][]int{}, first: map[string]map[netip.Prefix]int{}}
	for i, pool := range pools {
		if x.first[pool.Kind] == nil {
			x.first[pool.Kind] = map[netip.Prefix]int{}
		}
		for _, p := range pool.Prefixes {
			if !p.IsValid() {
				continue
			}
			p = p.Masked()
			if _, ok := x.first[pool.Kind][p]; !ok {
				x.first[pool.Kind][p] = i
			}
			if !slices.Contains(x.lengths[pool.Kind], p.Bits()) {
				x.lengths[pool.Kind] = append(x.lengths[pool.Kind], p.Bits())
			}
		}
	}
	for _, ls := range x.lengths {
		slices.Sort(ls)
	}
	return x
}

// holder returns the index of a pool of the kind with a prefix of at most
// maxBits bits that holds a, or -1.
func (x *poolIndex) holder(a netip.Addr, kind string, maxBits int) int {
	for _, bits := range x.lengths[kind] {
		if bits > maxBits || bits > a.BitLen() {
			break
		}
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if i, ok := x.first[kind][p]; ok {
			return i
		}
	}
	return -1
}
