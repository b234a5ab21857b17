package bgp

import (
	"net/netip"
	"testing"
)

func TestInterner(t *testing.T) {
	in := newInterner(nexthopsKey)
	a := []nexthop{{addr: netip.MustParseAddr("fd00::1")}}
	b := []nexthop{{addr: netip.MustParseAddr("fe80::1"), ifindex: 3}}
	if id := in.add(nil); id != 0 {
		t.Fatalf("empty set: id %d", id)
	}
	ida := in.add(a)
	a[0].ifindex = 7 // the interner keeps its own copy
	if got := in.get(ida); len(got) != 1 || got[0].ifindex != 0 {
		t.Fatalf("set %d: %v", ida, got)
	}
	a[0].ifindex = 0
	if id := in.add(a); id != ida {
		t.Fatalf("the same set twice: ids %d and %d", ida, id)
	}
	idb := in.add(b)
	if idb == ida || in.len() != 2 {
		t.Fatalf("distinct sets: ids %d, %d; %d held", ida, idb, in.len())
	}
	in.release(ida)
	if in.len() != 2 || len(in.get(ida)) != 1 {
		t.Fatal("a set with a user left was dropped")
	}
	in.release(ida)
	if in.len() != 1 || in.get(ida) != nil {
		t.Fatal("a set without users is still held")
	}
	// Its id is reused; the old key no longer names it.
	c := []nexthop{{addr: netip.MustParseAddr("10.0.0.1")}, {addr: netip.MustParseAddr("10.0.0.2")}}
	if id := in.add(c); id != ida || len(in.get(id)) != 2 {
		t.Fatalf("freed id not reused: %d", id)
	}
	if id := in.add(a); id == ida {
		t.Fatal("a dropped set still maps to its old id")
	}
}

// Addresses that differ only in their zone, or sets that concatenate to
// the same bytes, are distinct sets.
func TestInternerKeys(t *testing.T) {
	in := newInterner(hopsKey)
	ll := netip.MustParseAddr("fe80::1")
	x := in.add([]hop{{peer: ll.WithZone("eth0"), nexthop: ll}})
	y := in.add([]hop{{peer: ll.WithZone("eth1"), nexthop: ll}})
	z := in.add([]hop{{peer: ll, nexthop: ll}})
	w := in.add([]hop{{peer: ll, nexthop: ll, id: 1}})
	if x == y || x == z || y == z || w == z || in.len() != 4 {
		t.Fatalf("ids %d %d %d %d, %d held", x, y, z, w, in.len())
	}
}
