package bgp

import (
	"net/netip"
	"testing"

	"github.com/aird-net/aird/internal/config"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// ribEvent builds the path of a GoBGP event: from peer (invalid: ours),
// with an IPv6 MP_REACH next hop or an IPv4 NEXT_HOP.
func ribEvent(t *testing.T, prefix string, peer, nh netip.Addr, withdrawal bool) *apiutil.Path {
	t.Helper()
	p := netip.MustParsePrefix(prefix)
	nlri, err := gobgp.NewIPAddrPrefix(p)
	if err != nil {
		t.Fatal(err)
	}
	path := &apiutil.Path{Nlri: nlri, PeerAddress: peer, Withdrawal: withdrawal}
	if nh.IsValid() {
		if p.Addr().Is4() {
			a, err := gobgp.NewPathAttributeNextHop(nh)
			if err != nil {
				t.Fatal(err)
			}
			path.Attrs = append(path.Attrs, a)
		} else {
			a, err := gobgp.NewPathAttributeMpReachNLRI(gobgp.RF_IPv6_UC, []gobgp.PathNLRI{{NLRI: nlri}}, nh)
			if err != nil {
				t.Fatal(err)
			}
			path.Attrs = append(path.Attrs, a)
		}
	}
	return path
}

func filterOf(t *testing.T, fams families, prefixes ...string) importFilter {
	f := importFilter{families: fams}
	for _, s := range prefixes {
		var pf config.PrefixFilter
		if err := pf.UnmarshalText([]byte(s)); err != nil {
			t.Fatal(err)
		}
		f.prefixes = append(f.prefixes, pf)
	}
	return f
}

// The reconciler's copy of the RIB follows GoBGP's events: best-path
// deltas make the multipath sets (our own paths never count), UPDATEs
// from peers make the per-peer counts through the peers' import filters,
// withdrawals (from the wire or GoBGP's own) remove, a resync replaces
// everything, and a session that ended with paths asks for a resync at
// the End-of-RIB of the next one.
func TestRIBState(t *testing.T) {
	s := newRIBState()
	a, b := netip.MustParseAddr("fd00::a"), netip.MustParseAddr("fd00::b")
	s.filters = map[netip.Addr]importFilter{
		a: filterOf(t, famIPv6|famIPv4, "fd00:200::/40 ge 64 le 64", "10.0.0.0/8 le 32"),
		b: filterOf(t, famIPv6, "fd00:200::/40 ge 64 le 64"),
	}
	p1, p2, p4 := "fd00:200::/64", "fd00:200:1::/64", "10.1.0.0/16"
	ifindex := func(netip.Addr) int { return 0 }
	view := fibView{s: s, ifindex: ifindex}

	// UPDATEs: a's p1, p2, p4 and a rejected /48; b's p1 and p4 (b has
	// no IPv4).
	if !s.onUpdate([]*apiutil.Path{
		ribEvent(t, p1, a, a, false), ribEvent(t, p2, a, a, false), ribEvent(t, p4, a, a, false),
		ribEvent(t, "fd00:200::/48", a, a, false),
	}) {
		t.Fatal("no count changed")
	}
	s.onUpdate([]*apiutil.Path{ribEvent(t, p1, b, b, false), ribEvent(t, p4, b, b, false)})
	dirty, counts := s.take()
	if len(dirty) != 0 || counts[a][famIPv6] != 2 || counts[a][famIPv4] != 1 || counts[b][famIPv6] != 1 || counts[b][famIPv4] != 0 {
		t.Fatalf("after UPDATEs: dirty %v, counts %v", dirty, counts)
	}
	if _, counts := s.take(); counts != nil {
		t.Errorf("counts reported again without a change: %v", counts)
	}

	// Best-path deltas: p1 ECMP over a and b, p2 via a, p4 via a; our own
	// path is no FIB route.
	s.onBest([]*apiutil.Path{ribEvent(t, p1, a, a, false)})
	s.onBest([]*apiutil.Path{ribEvent(t, p1, b, b, false)})
	s.onBest([]*apiutil.Path{ribEvent(t, p2, a, a, false), ribEvent(t, p4, a, netip.MustParseAddr("10.0.0.1"), false)})
	if s.onBest([]*apiutil.Path{ribEvent(t, "fd00:9::/64", netip.Addr{}, netip.MustParseAddr("fd00::1"), false)}) {
		t.Error("our own path changed the copy")
	}
	dirty, _ = s.take()
	if len(dirty) != 3 {
		t.Errorf("dirty after best-path events: %v", dirty)
	}
	if nhs := view.changes([]prefixKey{keyOf(netip.MustParsePrefix(p1))})[0].nhs; len(nhs) != 2 || nhs[0].addr != a || nhs[1].addr != b {
		t.Errorf("p1: %v, want ECMP via a and b", nhs)
	}
	if !view.has(netip.MustParsePrefix(p4)) || view.has(netip.MustParsePrefix("fd00:9::/64")) {
		t.Error("has: p4 is learned, fd00:9::/64 is ours")
	}
	// The same set again (GoBGP's form without a change) changes nothing.
	if s.onBest([]*apiutil.Path{ribEvent(t, p1, a, a, false), ribEvent(t, p1, b, b, false)}) {
		t.Error("an unchanged set marked p1")
	}
	// Without b (over its limit), p1 goes via a only.
	ex := fibView{s: s, ifindex: ifindex, excluded: map[netip.Addr]bool{b: true}}
	if nhs := ex.changes([]prefixKey{keyOf(netip.MustParsePrefix(p1))})[0].nhs; len(nhs) != 1 || nhs[0].addr != a {
		t.Errorf("p1 without b: %v", nhs)
	}
	n := 0
	view.each(func(netip.Prefix, []nexthop) { n++ })
	if n != 3 {
		t.Errorf("each: %d prefixes, want 3", n)
	}

	// b withdraws p1: its count and its place in p1's set go.
	s.onUpdate([]*apiutil.Path{ribEvent(t, p1, b, netip.Addr{}, true)})
	s.onBest([]*apiutil.Path{ribEvent(t, p1, b, netip.Addr{}, true)})
	// a's p2 is replaced by a path its filter rejects... which cannot
	// happen with a prefix filter, so a new filter for a: p2 no longer
	// matches, and a's next UPDATE for it is as good as a withdrawal.
	s.filters[a] = filterOf(t, famIPv6|famIPv4, "fd00:200::/64", "10.0.0.0/8 le 32")
	s.onUpdate([]*apiutil.Path{ribEvent(t, p2, a, a, false)})
	dirty, counts = s.take()
	if len(dirty) != 1 || counts[a][famIPv6] != 1 || counts[b] != nil {
		t.Errorf("after withdrawals: dirty %v, counts %v", dirty, counts)
	}
	if nhs := view.changes([]prefixKey{keyOf(netip.MustParsePrefix(p1))})[0].nhs; len(nhs) != 1 || nhs[0].addr != a {
		t.Errorf("p1 after b's withdrawal: %v", nhs)
	}

	// a's session ends with paths: the End-of-RIB of its next session
	// asks for a resync, until the last family's.
	s.sessionDown(a)
	s.sessionDown(b) // no paths: nothing dropped later
	if s.endOfRIB(b, true) {
		t.Error("a resync for a peer without paths")
	}
	if !s.endOfRIB(a, false) || !s.endOfRIB(a, true) || s.endOfRIB(a, true) {
		t.Error("End-of-RIB after a session with paths")
	}

	// A resync replaces everything: best paths make the sets, every
	// learned path counts, ours is left out.
	err := s.resync(func() ([]ribPath, error) {
		return []ribPath{
			{prefix: netip.MustParsePrefix(p2), peer: a, nexthop: a, best: true},
			{prefix: netip.MustParsePrefix(p2), peer: b, nexthop: b, best: false},
			{prefix: netip.MustParsePrefix("fd00:9::/64"), local: true, best: true},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dirty, counts = s.take()
	if len(dirty) != 0 || counts[a][famIPv6] != 1 || counts[a][famIPv4] != 0 || counts[b][famIPv6] != 1 {
		t.Errorf("after the resync: dirty %v, counts %v", dirty, counts)
	}
	n = 0
	view.each(func(p netip.Prefix, nhs []nexthop) {
		n++
		if p.String() != p2 || len(nhs) != 1 || nhs[0].addr != a {
			t.Errorf("after the resync: %s via %v", p, nhs)
		}
	})
	if n != 1 || len(s.paths) != 1 {
		t.Errorf("after the resync: %d routes, %d prefixes", n, len(s.paths))
	}
}

// A prefix that keeps changing between two passes is one change for the
// pass, and the list of changed prefixes stays bounded meanwhile.
func TestRIBStateDirtyBounded(t *testing.T) {
	s := newRIBState()
	a := netip.MustParseAddr("fd00::a")
	up := []*apiutil.Path{ribEvent(t, "fd00:200::/64", a, a, false)}
	down := []*apiutil.Path{ribEvent(t, "fd00:200::/64", a, netip.Addr{}, true)}
	other := []*apiutil.Path{ribEvent(t, "fd00:200:1::/64", a, a, false)}
	s.onBest(other)
	for range 50000 {
		if !s.onBest(up) || !s.onBest(down) {
			t.Fatal("a flap changed nothing")
		}
		if len(s.dirty) > 2*dirtyFloor {
			t.Fatalf("%d changed prefixes held for 2 prefixes", len(s.dirty))
		}
	}
	s.onBest(up)
	dirty, _ := s.take()
	if len(dirty) != 2 || dirty[0].prefix().String() != "fd00:200::/64" || dirty[1].prefix().String() != "fd00:200:1::/64" {
		t.Errorf("take: %v, want fd00:200::/64 and fd00:200:1::/64 once each", dirty)
	}
	// The next pass starts empty, and the arrays are reused.
	if dirty, _ := s.take(); len(dirty) != 0 {
		t.Errorf("take again: %v", dirty)
	}
	s.onBest(down)
	if dirty, _ := s.take(); len(dirty) != 1 {
		t.Errorf("after a withdrawal: %v", dirty)
	}
}
