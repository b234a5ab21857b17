package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Route is one locally originated prefix: a pod prefix or a service VIP.
// The next hop is not part of it: each peer gets the node's underlay
// address of the session's family (an IPv6 next hop for IPv4 prefixes on
// IPv6 sessions, RFC 8950). Communities and large communities are added to
// those of [bgp] and of the peer.
type Route struct {
	Prefix           netip.Prefix
	Communities      []string
	LargeCommunities []string
}

// routeAttrs are the path attributes of our routes that carry one set of
// communities. Routes with the same communities share one routeAttrs, and
// GoBGP keeps pointers to its attribute objects, so 100,000 routes with a
// handful of distinct community sets hold a handful of attribute objects,
// here and in GoBGP's RIB. GoBGP never modifies attributes in place.
type routeAttrs struct {
	key   string // canonical communities, then large communities, for comparison
	comms []uint32
	large []largeCommunity
	// attrs are ORIGIN, AS_PATH and the communities; v4 adds the
	// unspecified IPv4 NEXT_HOP, v6 an MP_REACH_NLRI with the unspecified
	// IPv6 next hop. That MP_REACH_NLRI only carries the next hop into
	// AddPath and DeletePath: GoBGP takes the next hop out of it and
	// builds each path's own MP_REACH_NLRI around the path's NLRI
	// (apiutil2Path in pkg/server), so one placeholder serves every route
	// instead of an attribute and a slice per route (16 MB of garbage per
	// 100,000 IPv6 routes).
	attrs, v4, v6 []gobgp.PathAttributeInterface
}

// mpReachPlaceholder is the IPv6 MP_REACH_NLRI of the AddPath requests:
// the unspecified next hop and a placeholder NLRI (GoBGP refuses an
// MP_REACH_NLRI without one).
func mpReachPlaceholder() gobgp.PathAttributeInterface {
	nlri, _ := gobgp.NewIPAddrPrefix(netip.PrefixFrom(netip.IPv6Unspecified(), 128)) // cannot fail
	mp, _ := gobgp.NewPathAttributeMpReachNLRI(gobgp.RF_IPv6_UC, []gobgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
	return mp
}

func newRouteAttrs(comms []uint32, large []largeCommunity) *routeAttrs {
	cs := make([]string, len(comms))
	for i, c := range comms {
		cs[i] = communityString(c)
	}
	ls := make([]string, len(large))
	for i, c := range large {
		ls[i] = c.String()
	}
	a := &routeAttrs{key: strings.Join(cs, " ") + "|" + strings.Join(ls, " "), comms: comms, large: large}
	a.attrs = []gobgp.PathAttributeInterface{
		gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		gobgp.NewPathAttributeAsPath(nil),
	}
	if len(comms) > 0 {
		a.attrs = append(a.attrs, gobgp.NewPathAttributeCommunities(comms))
	}
	if len(large) > 0 {
		a.attrs = append(a.attrs, gobgp.NewPathAttributeLargeCommunities(toGoBGPLarge(large)))
	}
	a.attrs = slices.Clip(a.attrs)
	nh, _ := gobgp.NewPathAttributeNextHop(netip.IPv4Unspecified()) // cannot fail for an IPv4 address
	a.v4 = append(slices.Clone(a.attrs), nh)
	a.v6 = append(slices.Clone(a.attrs), mpReachPlaceholder())
	return a
}

// communities is the canonical "65001:1 65001:2" form (for tests and logs).
func (a *routeAttrs) communities() string {
	c, _, _ := strings.Cut(a.key, "|")
	return c
}

// same reports whether a and b carry the same communities.
func (a *routeAttrs) same(b *routeAttrs) bool { return a == b || a.key == b.key }

// localRoute is one entry of a routeSet.
type localRoute struct {
	prefix netip.Prefix
	attrs  *routeAttrs
}

// attrsCache interns routeAttrs: by communities as written (so that
// 100,000 routes without communities parse nothing) and by canonical key.
type attrsCache struct {
	byRaw map[string]*routeAttrs
	byKey map[string]*routeAttrs
	buf   []byte
}

func newAttrsCache() *attrsCache {
	return &attrsCache{byRaw: map[string]*routeAttrs{}, byKey: map[string]*routeAttrs{}}
}

// get returns the attributes for the communities of one Route.
func (c *attrsCache) get(comms, large []string) (*routeAttrs, error) {
	c.buf = c.buf[:0]
	for _, s := range comms {
		c.buf = append(append(c.buf, s...), 0)
	}
	c.buf = append(c.buf, 1)
	for _, s := range large {
		c.buf = append(append(c.buf, s...), 0)
	}
	if a, ok := c.byRaw[string(c.buf)]; ok {
		return a, nil
	}
	cs, err := parseCommunities(comms)
	if err != nil {
		return nil, err
	}
	ls, err := parseLargeCommunities(large)
	if err != nil {
		return nil, err
	}
	a := c.intern(cs, ls)
	c.byRaw[string(c.buf)] = a
	return a, nil
}

// merge returns the attributes with the communities of both a and b.
func (c *attrsCache) merge(a, b *routeAttrs) *routeAttrs {
	if a.same(b) {
		return a
	}
	cs := slices.Compact(slices.Sorted(slices.Values(slices.Concat(a.comms, b.comms))))
	ls := slices.Concat(a.large, b.large)
	slices.SortFunc(ls, compareLarge)
	return c.intern(cs, slices.Compact(ls))
}

func (c *attrsCache) intern(comms []uint32, large []largeCommunity) *routeAttrs {
	a := newRouteAttrs(comms, large)
	if old, ok := c.byKey[a.key]; ok {
		return old
	}
	c.byKey[a.key] = a
	return a
}

// checkPrefix validates the prefix of a Route.
func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("invalid prefix %v", p)
	case p.Addr().Is4In6():
		return fmt.Errorf("prefix %s is IPv4-mapped: write it as IPv4", p)
	case p.Addr().Zone() != "":
		return fmt.Errorf("prefix %s has a zone", p)
	case p != p.Masked():
		return fmt.Errorf("prefix %s has host bits set (did you mean %s?)", p, p.Masked())
	}
	return nil
}

// path renders the route for GoBGP's AddPath/DeletePath; see fill.
func (r localRoute) path(withdraw bool, age int64) (*apiutil.Path, error) {
	p := &apiutil.Path{}
	if err := r.fill(p, withdraw, age); err != nil {
		return nil, err
	}
	return p, nil
}

// fill renders the route into p. The next hop is left unspecified (0.0.0.0
// or ::): GoBGP replaces it with the session's local address and the export
// policy with the underlay address. GoBGP keeps the NLRI and the attribute
// objects other than the next hop's, not p or its Attrs slice.
func (r localRoute) fill(p *apiutil.Path, withdraw bool, age int64) error {
	nlri, err := gobgp.NewIPAddrPrefix(r.prefix)
	if err != nil {
		return fmt.Errorf("prefix %s: %w", r.prefix, err)
	}
	*p = apiutil.Path{Family: gobgp.RF_IPv4_UC, Nlri: nlri, Attrs: r.attrs.v4, Age: age, Withdrawal: withdraw}
	if !r.prefix.Addr().Is4() {
		p.Family, p.Attrs = gobgp.RF_IPv6_UC, r.attrs.v6
	}
	return nil
}
