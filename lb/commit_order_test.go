package lb

import (
	"net/netip"
	"slices"
	"testing"
)

// A backend that moves from one service to a later one in the same change
// keeps its entry and id: every service's new references are counted
// before any old one is dropped. (Dropped first, it reached zero in
// between: its backends entry was deleted and its id freed while the later
// service's new table gave it slots, whose flows were then dropped.)
func TestBackendMovesBetweenServicesInOneChange(t *testing.T) {
	lm := loadMaps(t)
	p, ids, _ := newProgrammer(t, lm)
	mustProgram(t, p, Change{Full: true, Upsert: allUsable(
		named("a", "fd00:300::10", "fd00:2::1", "fd00:2::2"),
		named("b", "fd00:300::11", "fd00:2::3"))})
	x := netip.MustParseAddr("fd00:2::2")
	idX, ok := ids.Backend(x)
	if !ok {
		t.Fatal("no id for the backend that moves")
	}
	b := named("b", "fd00:300::11", "fd00:2::3", "fd00:2::2")
	mustProgram(t, p, Change{Full: true, Upsert: allUsable(named("a", "fd00:300::10", "fd00:2::1"), b)})

	s := snap(t, lm)
	if _, ok := s.backends[idX]; !ok {
		t.Errorf("backend id %d (%s) has no backends entry after moving to b", idX, x)
	}
	if id, ok := ids.Backend(x); !ok || id != idX {
		t.Errorf("ids.Backend(%s) = %d, %v; want %d", x, id, ok, idX)
	}
	if !slices.Contains(kernelTable(t, lm, p.svcs[b.Key()].vid), idX) {
		t.Errorf("b's table gives no slot to %s (id %d)", x, idX)
	}
}

// A shared table whose last user moves to another backend set while a
// later service takes that set in the same change stays open for it: a
// third service with the same set shares it afterwards.
func TestSharedTableMovesBetweenServicesInOneChange(t *testing.T) {
	lm := loadMaps(t)
	p, _, _ := newProgrammer(t, lm)
	set := []string{"fd00:2::1", "fd00:2::2"}
	mustProgram(t, p, Change{Full: true, Upsert: allUsable(
		named("a", "fd00:300::10", set...),
		named("b", "fd00:300::11", "fd00:2::3"))})
	b := named("b", "fd00:300::11", set...)
	mustProgram(t, p, Change{Full: true, Upsert: allUsable(named("a", "fd00:300::10", "fd00:2::4"), b)})
	tb := p.svcs[b.Key()].table
	if tb == nil || tb.refs != 1 || p.shared[tb.key] != tb {
		t.Fatalf("b's table after the move: %+v (shared: %v)", tb, tb != nil && p.shared[tb.key] == tb)
	}

	c := named("c", "fd00:300::12", set...)
	mustProgram(t, p, Change{Upsert: allUsable(c)})
	if got, want := kernelTable(t, lm, p.svcs[c.Key()].vid), kernelTable(t, lm, p.svcs[b.Key()].vid); !slices.Equal(got, want) {
		t.Errorf("c's table differs from b's, which has the same backends")
	}
	if p.svcs[c.Key()].table != tb || tb.refs != 2 {
		t.Errorf("c does not share b's table (refs %d)", tb.refs)
	}
}

// named is svc's service under another name and VIP.
func named(name, vip string, backends ...string) Service {
	s := svc(backends...)
	s.Name, s.VIP = name, netip.MustParseAddr(vip)
	return s
}
