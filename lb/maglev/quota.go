package maglev

import "slices"

// apportion sets every turn taker's quota: its share of size slots by the
// largest-remainder (Hamilton) method. Each gets ⌊size·w/W⌋ slots, W being
// the total weight, and the size − Σ⌊…⌋ slots left over (fewer than the
// number of takers) go one each to the takers with the largest remainders
// of size·w/W, ties to the earlier one in key order. A quota is thus
// within one slot of size·w/W, and the quotas add up to size.
//
// rank is scratch; the (possibly grown) scratch is returned.
func apportion(ts []taker, size uint32, rank []int32) []int32 {
	var total uint64 // < 2³¹ takers · 2³² weight, no overflow
	for i := range ts {
		total += uint64(ts[i].weight)
	}
	left := uint64(size)
	for i := range ts {
		// size ≤ 2²⁴ and weight < 2³²: the product fits in 64 bits.
		q := uint64(size) * uint64(ts[i].weight) / total
		ts[i].quota = uint32(q)
		left -= q
	}
	if left == 0 {
		return rank
	}
	rank = rank[:0]
	for i := range ts {
		rank = append(rank, int32(i))
	}
	rem := func(i int32) uint64 { return uint64(size) * uint64(ts[i].weight) % total }
	slices.SortFunc(rank, func(a, b int32) int {
		ra, rb := rem(a), rem(b)
		switch {
		case ra > rb:
			return -1
		case ra < rb:
			return 1
		}
		return int(a - b)
	})
	for _, i := range rank[:left] {
		ts[i].quota++
	}
	return rank
}
