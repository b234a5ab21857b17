package bgp

import (
	"iter"
	"net/netip"
)

// prefixKey is a prefix as a map key without pointers (a netip.Addr has
// one, for the zone, which our prefixes never carry): the GC does not scan
// a map without pointers, and its slots are 24 bytes instead of 40.
type prefixKey struct {
	addr [16]byte
	bits uint8
	is4  bool
}

func keyOf(p netip.Prefix) prefixKey {
	return prefixKey{addr: p.Addr().As16(), bits: uint8(p.Bits()), is4: p.Addr().Is4()}
}

func (k prefixKey) prefix() netip.Prefix {
	a := netip.AddrFrom16(k.addr)
	if k.is4 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, int(k.bits))
}

// routeSet maps our prefixes to their attributes: the routes SetAdvertised
// asked for, or the routes GoBGP holds. The map holds an index into attrs,
// the set's distinct attributes (one per community set), so that 100,000
// routes cost about 2.5 MB that the GC never scans. A routeSet is not
// safe for concurrent use.
type routeSet struct {
	m     map[prefixKey]uint32
	attrs []*routeAttrs
	index map[string]uint32 // by routeAttrs.key
}

func newRouteSet(n int) *routeSet {
	return &routeSet{m: make(map[prefixKey]uint32, n), index: map[string]uint32{}}
}

func (s *routeSet) len() int { return len(s.m) }

func (s *routeSet) get(p netip.Prefix) (*routeAttrs, bool) {
	i, ok := s.m[keyOf(p)]
	if !ok {
		return nil, false
	}
	return s.attrs[i], true
}

// set records p with attributes a, or with the equal ones the set holds.
func (s *routeSet) set(p netip.Prefix, a *routeAttrs) {
	i, ok := s.index[a.key]
	if !ok {
		i = uint32(len(s.attrs))
		s.attrs = append(s.attrs, a)
		s.index[a.key] = i
	}
	s.m[keyOf(p)] = i
}

func (s *routeSet) delete(p netip.Prefix) { delete(s.m, keyOf(p)) }

// all yields every route, in map order.
func (s *routeSet) all() iter.Seq2[netip.Prefix, *routeAttrs] {
	return func(yield func(netip.Prefix, *routeAttrs) bool) {
		for k, i := range s.m {
			if !yield(k.prefix(), s.attrs[i]) {
				return
			}
		}
	}
}

// list returns every route, in map order.
func (s *routeSet) list() []localRoute {
	out := make([]localRoute, 0, s.len())
	for p, a := range s.all() {
		out = append(out, localRoute{p, a})
	}
	return out
}

// clone copies the set.
func (s *routeSet) clone() *routeSet {
	c := newRouteSet(s.len())
	for p, a := range s.all() {
		c.set(p, a)
	}
	return c
}

// hasIPv4 reports whether the set holds an IPv4 prefix.
func (s *routeSet) hasIPv4() bool {
	for k := range s.m {
		if k.is4 {
			return true
		}
	}
	return false
}
