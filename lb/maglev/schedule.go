package maglev

import "slices"

// The order of turns: a taker's k-th turn comes at virtual time k/weight,
// turns at the same time go in rank (key) order, and a taker stops once it
// has its quota. Takers of equal weight have the same times, so they are
// scheduled together as a group: in each of the group's rounds every
// member takes a turn, in rank order, except that the last round is
// partial when the quotas differ (apportion gives the extra slot to a
// prefix of the group, its lowest ranks). A min-heap orders the groups by
// their next turn. With one weight this is the paper's round robin; in
// general it costs O(size + rounds·log groups), rounds being the total
// number of group rounds.

// group is the takers of one weight, as a heap entry.
type group struct {
	weight uint32
	round  uint32 // current round, from 1: its turns come at round/weight
	full   uint32 // rounds in which every member takes a turn
	extra  int32  // members (the first ones) taking a turn in round full+1
	size   int32  // members[first:first+size] are the group's, in rank order
	first  int32
	cur    int32 // the member whose turn is next is members[first+cur]
	rank   int32 // its rank
}

// span is the number of members taking a turn in the current round.
func (g *group) span() int32 {
	switch {
	case g.round <= g.full:
		return g.size
	case g.round == g.full+1:
		return g.extra
	}
	return 0
}

// before reports whether a's next turn comes before b's: a.round/a.weight
// < b.round/b.weight, compared without division, ties in rank order.
// round ≤ MaxSize+1 and weight < 2³², so the products fit in 64 bits.
func (a *group) before(b *group) bool {
	x := uint64(a.round) * uint64(b.weight)
	y := uint64(b.round) * uint64(a.weight)
	return x < y || x == y && a.rank < b.rank
}

// schedule is the scratch of fair.
type schedule struct {
	members []int32
	heap    []group
}

// fair fills the table, takers (in rank order, quotas set) taking turns in
// the order described above.
func (s *schedule) fair(f *filler, ts []taker) {
	s.members = s.members[:0]
	for r := range ts {
		if ts[r].quota > 0 {
			s.members = append(s.members, int32(r))
		}
	}
	members := s.members
	slices.SortFunc(members, func(a, b int32) int {
		if wa, wb := ts[a].weight, ts[b].weight; wa != wb {
			if wa < wb {
				return -1
			}
			return 1
		}
		return int(a - b)
	})
	heap := s.heap[:0]
	for first := 0; first < len(members); {
		w := ts[members[first]].weight
		end := first + 1
		for end < len(members) && ts[members[end]].weight == w {
			end++
		}
		full := ts[members[end-1]].quota // the lowest quota of the group
		extra := 0
		for _, m := range members[first:end] {
			if ts[m].quota > full {
				extra++
			}
		}
		g := group{weight: w, round: 1, full: full, extra: int32(extra), size: int32(end - first), first: int32(first)}
		if g.span() == 0 {
			first = end
			continue
		}
		g.rank = members[first]
		heap = append(heap, g)
		first = end
	}
	down := func(i int) {
		n := len(heap)
		x := heap[i]
		for {
			c := 2*i + 1
			if c >= n {
				break
			}
			if r := c + 1; r < n && heap[r].before(&heap[c]) {
				c = r
			}
			if !heap[c].before(&x) {
				break
			}
			heap[i] = heap[c]
			i = c
		}
		heap[i] = x
	}
	for i := len(heap)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(heap) > 0 {
		g := &heap[0]
		if len(heap) == 1 { // the last group (with equal weights, the only one)
			s.finish(f, ts, g)
			break
		}
		f.take(&ts[g.rank])
		if g.cur++; g.cur == g.span() {
			g.round++
			g.cur = 0
			if g.span() == 0 {
				last := len(heap) - 1
				heap[0] = heap[last]
				heap = heap[:last]
				if last > 0 {
					down(0)
				}
				continue
			}
		}
		g.rank = members[g.first+g.cur]
		// Often the same group goes on (the rest of its round comes before
		// any other group's next turn): then the heap is left as it is
		// (down would copy the group out and back, and reading it just
		// after the fields were written stalls the load on the stores).
		if n := len(heap); n > 1 && (heap[1].before(g) || n > 2 && heap[2].before(g)) {
			down(0)
		}
	}
	s.heap = heap
}

// finish gives the rest of g's turns, when no other group has any left:
// the rest of its current round from member cur on, then its later rounds
// in full.
func (s *schedule) finish(f *filler, ts []taker, g *group) {
	for cur := g.cur; ; cur = 0 {
		for _, m := range s.members[g.first+cur : g.first+g.span()] {
			f.take(&ts[m])
		}
		if g.round++; g.span() == 0 {
			return
		}
	}
}
