package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

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

// localRoute is a validated Route, comparable with ==.
type localRoute struct {
	prefix netip.Prefix
	comms  string // canonical, for comparison
	large  string
	attrs  []gobgp.PathAttributeInterface
}

func (r localRoute) same(o localRoute) bool {
	return r.prefix == o.prefix && r.comms == o.comms && r.large == o.large
}

// newLocalRoute validates r.
func newLocalRoute(r Route) (localRoute, error) {
	p := r.Prefix
	switch {
	case !p.IsValid():
		return localRoute{}, fmt.Errorf("invalid prefix %v", p)
	case p.Addr().Is4In6():
		return localRoute{}, fmt.Errorf("prefix %s is IPv4-mapped: write it as IPv4", p)
	case p.Addr().Zone() != "":
		return localRoute{}, fmt.Errorf("prefix %s has a zone", p)
	case p != p.Masked():
		return localRoute{}, fmt.Errorf("prefix %s has host bits set (did you mean %s?)", p, p.Masked())
	}
	comms, err := parseCommunities(r.Communities)
	if err != nil {
		return localRoute{}, fmt.Errorf("%s: %w", p, err)
	}
	large, err := parseLargeCommunities(r.LargeCommunities)
	if err != nil {
		return localRoute{}, fmt.Errorf("%s: %w", p, err)
	}
	lr := localRoute{prefix: p}
	var cs, ls []string
	for _, c := range comms {
		cs = append(cs, communityString(c))
	}
	for _, c := range large {
		ls = append(ls, c.String())
	}
	lr.comms, lr.large = strings.Join(cs, " "), strings.Join(ls, " ")
	lr.attrs = []gobgp.PathAttributeInterface{
		gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		gobgp.NewPathAttributeAsPath(nil),
	}
	if len(comms) > 0 {
		lr.attrs = append(lr.attrs, gobgp.NewPathAttributeCommunities(comms))
	}
	if len(large) > 0 {
		lr.attrs = append(lr.attrs, gobgp.NewPathAttributeLargeCommunities(toGoBGPLarge(large)))
	}
	return lr, nil
}

// path renders the route for GoBGP's AddPath/DeletePath. The next hop is
// left unspecified (0.0.0.0 or ::): GoBGP replaces it with the session's
// local address and the export policy with the underlay address.
func (r localRoute) path(withdraw bool) (*apiutil.Path, error) {
	nlri, err := gobgp.NewIPAddrPrefix(r.prefix)
	if err != nil {
		return nil, fmt.Errorf("prefix %s: %w", r.prefix, err)
	}
	attrs := slices.Clone(r.attrs)
	family := gobgp.RF_IPv6_UC
	if r.prefix.Addr().Is4() {
		family = gobgp.RF_IPv4_UC
		nh, err := gobgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, fmt.Errorf("prefix %s: %w", r.prefix, err)
		}
		attrs = append(attrs, nh)
	} else {
		mp, err := gobgp.NewPathAttributeMpReachNLRI(family, []gobgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, fmt.Errorf("prefix %s: %w", r.prefix, err)
		}
		attrs = append(attrs, mp)
	}
	return &apiutil.Path{
		Family:     family,
		Nlri:       nlri,
		Attrs:      attrs,
		Age:        time.Now().Unix(),
		Withdrawal: withdraw,
	}, nil
}
