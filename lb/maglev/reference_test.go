package maglev

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// referenceBuild is the specification of Build written plainly, without
// groups, heap or bitmap: backends sorted by key; quotas by largest
// remainder (ties to the lower key); then, one turn at a time, the
// backend with quota left whose next turn (turns+1)/weight is earliest
// (ties to the lower key) takes the first free slot of its preference
// list. It costs O(size·n).
func referenceBuild(bs []Backend, size uint32) []int32 {
	type ref struct {
		key                  string
		index                int
		w, quota, turns, pos uint64
		skip                 uint64
	}
	var rs []ref
	var total uint64
	for i, b := range bs {
		if b.Weight > 0 {
			rs = append(rs, ref{key: b.Key, index: i, w: uint64(b.Weight)})
			total += uint64(b.Weight)
		}
	}
	table := slices.Repeat([]int32{-1}, int(size))
	if len(rs) == 0 {
		return table
	}
	sort.Slice(rs, func(i, j int) bool { return strings.Compare(rs[i].key, rs[j].key) < 0 })
	left := uint64(size)
	for i := range rs {
		rs[i].quota = uint64(size) * rs[i].w / total
		left -= rs[i].quota
		off, skip := permutation(rs[i].key, size)
		rs[i].pos, rs[i].skip = uint64(off), uint64(skip)
	}
	byRem := make([]int, len(rs))
	for i := range byRem {
		byRem[i] = i
	}
	sort.SliceStable(byRem, func(a, b int) bool {
		return uint64(size)*rs[byRem[a]].w%total > uint64(size)*rs[byRem[b]].w%total
	})
	for _, i := range byRem[:left] {
		rs[i].quota++
	}
	for range size {
		best := -1
		for i := range rs {
			r := &rs[i]
			if r.turns == r.quota {
				continue
			}
			if best < 0 || (r.turns+1)*rs[best].w < (rs[best].turns+1)*r.w {
				best = i
			}
		}
		r := &rs[best]
		for table[r.pos] >= 0 {
			r.pos = (r.pos + r.skip) % uint64(size)
		}
		table[r.pos] = int32(r.index)
		r.turns++
	}
	return table
}

// TestMatchesReference checks Build against referenceBuild.
func TestMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 13))
	pick := func(ws ...uint32) func(int) uint32 {
		return func(int) uint32 { return ws[r.IntN(len(ws))] }
	}
	type tc struct {
		n      int
		size   uint32
		weight func(i int) uint32
	}
	cases := []tc{
		{1, 7, pick(1)},
		{3, 7, pick(5)},
		{7, 7, pick(1)},
		{10, 7, pick(1)},
		{10, 7, pick(1, 2, 3)},
		{50, 13, pick(0, 1, 2, 100)},
		{100, 4093, pick(100)},
		{100, 4093, pick(1, 2, 3, 4)},
		{100, 4093, pick(0, 50, 100, 200)},
		{100, 4093, func(int) uint32 { return 1 + r.Uint32N(65535) }},
		{1000, 4093, func(int) uint32 { return 1 + r.Uint32N(100) }},
		{1000, bigSize, pick(100)},
		{300, bigSize, func(int) uint32 { return 1 + r.Uint32N(100) }},
		{200, bigSize, func(i int) uint32 { return map[bool]uint32{true: 65535, false: 1}[i == 0] }},
		{20, 101, func(int) uint32 { return r.Uint32() }},
		// The sizes around the fill's switch from a byte a slot to a bit
		// (32,768 slots), and the default a service of 100 backends gets.
		{100, 12809, pick(100)},
		{100, 12809, pick(1, 2, 3, 4)},
		{300, 32749, func(int) uint32 { return 1 + r.Uint32N(100) }},
		{300, 32771, func(int) uint32 { return 1 + r.Uint32N(100) }},
		// Equal remainders across weights (size·w mod W = 7 for all), so
		// the leftover slots are given by key order across groups.
		{4, 7, func(i int) uint32 { return []uint32{1, 3, 3, 7}[i] }},
		{6, 7, func(i int) uint32 { return []uint32{1, 1, 3, 3, 3, 3}[i] }},
		{6, 7, func(i int) uint32 { return []uint32{3, 1, 3, 1, 3, 3}[i] }},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d/n=%d/size=%d", i, c.n, c.size), func(t *testing.T) {
			bs := make([]Backend, c.n)
			for j := range bs {
				bs[j] = Backend{Key: addrKey(r.IntN(1 << 24)), Weight: c.weight(j)}
				for slices.ContainsFunc(bs[:j], func(b Backend) bool { return b.Key == bs[j].Key }) {
					bs[j].Key = addrKey(r.IntN(1 << 24))
				}
			}
			if got, want := mustBuild(t, bs, c.size), referenceBuild(bs, c.size); !slices.Equal(got, want) {
				t.Fatal("Build and referenceBuild disagree")
			}
		})
	}
}
