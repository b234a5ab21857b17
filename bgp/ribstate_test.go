package bgp

import (
	"net/netip"
	"slices"
	"testing"
)

// The reconciler's copy of the RIB: a full pass fills it, a pass over
// looked-up prefixes replaces just those (a prefix without paths is gone),
// the per-peer counts follow, and each looked-up prefix is looked up once
// more in the next pass.
func TestRIBState(t *testing.T) {
	s := newRIBState()
	a, b := netip.MustParseAddr("fd00::a"), netip.MustParseAddr("fd00::b")
	p1, p2, p3 := netip.MustParsePrefix("fd00:1::/64"), netip.MustParsePrefix("fd00:2::/64"), netip.MustParsePrefix("10.1.0.0/16")
	never := func(int) bool { return false }
	if full, _ := s.take(never); !full {
		t.Fatal("the first pass is not full")
	}
	s.reset()
	ifindex := func(netip.Addr) int { return 0 }
	s.apply(nil, []ribPath{
		{prefix: p1, peer: a, nexthop: a, best: true},
		{prefix: p1, peer: b, nexthop: b, best: true},
		{prefix: p2, peer: a, nexthop: a, best: true},
		{prefix: p3, peer: b, nexthop: netip.MustParseAddr("fd00::b"), best: false},
		{prefix: netip.MustParsePrefix("fd00:9::/64"), local: true, best: true},
	}, ifindex)
	c := s.counts()
	if c[a][famIPv6] != 2 || c[b][famIPv6] != 1 || c[b][famIPv4] != 1 {
		t.Errorf("counts after the full pass: %v", c)
	}
	w := s.want(nil)
	if len(w) != 2 || len(w[p1]) != 2 || len(w[p2]) != 1 {
		t.Errorf("want: %v (p3 is not best, the local path is ours)", w)
	}
	if w := s.want(map[netip.Addr]bool{a: true}); len(w) != 1 || len(w[p1]) != 1 || w[p1][0].addr != b {
		t.Errorf("want without a: %v", w)
	}

	s.markDirty([]netip.Prefix{p1, p2})
	full, dirty := s.take(never)
	if full || len(dirty) != 2 {
		t.Fatalf("take: full %t, %v", full, dirty)
	}
	// p1 lost b's path, p2 is gone.
	s.apply(dirty, []ribPath{{prefix: p1, peer: a, nexthop: a, best: true}}, ifindex)
	c = s.counts()
	if c[a][famIPv6] != 1 || c[b][famIPv6] != 0 || c[b][famIPv4] != 1 {
		t.Errorf("counts after the update: %v", c)
	}
	if w := s.want(nil); len(w) != 1 || len(w[p1]) != 1 {
		t.Errorf("want after the update: %v", w)
	}
	if !s.recheck() {
		t.Error("no second look at the updated prefixes")
	}
	full, again := s.take(never)
	slices.SortFunc(again, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	if full || len(again) != 2 || s.recheck() {
		t.Errorf("second look: full %t, %v, recheck %t", full, again, s.recheck())
	}
	s.markDirty([]netip.Prefix{p1, p2, p3})
	if full, _ := s.take(func(n int) bool { return n == 3 }); !full || s.recheck() {
		t.Error("a pass that walks the whole RIB anyway carries prefixes over")
	}
	if !s.cheaperToWalk(100000) || s.cheaperToWalk(10) {
		t.Error("cheaperToWalk")
	}
}
