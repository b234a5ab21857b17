package bgp

import (
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// ribPath is one path of GoBGP's global RIB, flattened. The global RIB
// holds only what the import policy accepted, plus our own paths.
type ribPath struct {
	prefix    netip.Prefix
	local     bool       // originated by this node (AddPath)
	peer      netip.Addr // who sent it (invalid for local paths)
	nexthop   netip.Addr
	llNexthop netip.Addr // link-local next hop of an IPv6 MP_REACH, if any
	best      bool       // the best path or one of the multipath set
	stale     bool       // kept for a peer in graceful restart
	age       time.Time
	asPath    []uint32
	comms     []uint32
	large     []largeCommunity
}

// readRIB walks GoBGP's global RIB for both unicast families. With
// learnedOnly it skips our own paths without flattening them: the FIB
// reconciler needs only learned routes, and a node may originate 100,000.
func readRIB(srv *server.BgpServer, learnedOnly bool) ([]ribPath, error) {
	var out []ribPath
	for _, fam := range []gobgp.Family{gobgp.RF_IPv6_UC, gobgp.RF_IPv4_UC} {
		err := srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam},
			func(nlri gobgp.NLRI, paths []*apiutil.Path) {
				prefix, ok := nlriPrefix(nlri)
				if !ok {
					return
				}
				for _, p := range paths {
					if p.Withdrawal || (learnedOnly && !p.PeerAddress.IsValid()) {
						continue
					}
					out = append(out, flattenPath(prefix, p))
				}
			})
		if err != nil {
			return nil, fmt.Errorf("list paths %s: %w", fam, err)
		}
	}
	return out, nil
}

func nlriPrefix(n gobgp.NLRI) (netip.Prefix, bool) {
	if p, ok := n.(*gobgp.IPAddrPrefix); ok {
		return p.Prefix.Masked(), p.Prefix.IsValid()
	}
	p, err := netip.ParsePrefix(n.String())
	return p.Masked(), err == nil
}

func flattenPath(prefix netip.Prefix, p *apiutil.Path) ribPath {
	r := ribPath{
		prefix: prefix,
		local:  !p.PeerAddress.IsValid(),
		peer:   p.PeerAddress.Unmap(),
		best:   p.Best,
		stale:  p.Stale,
		age:    time.Unix(p.Age, 0),
	}
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *gobgp.PathAttributeNextHop:
			r.nexthop = a.Value.Unmap()
		case *gobgp.PathAttributeMpReachNLRI:
			r.nexthop = a.Nexthop.Unmap()
			r.llNexthop = a.LinkLocalNexthop
		case *gobgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				r.asPath = append(r.asPath, seg.GetAS()...)
			}
		case *gobgp.PathAttributeCommunities:
			r.comms = append(r.comms, a.Value...)
		case *gobgp.PathAttributeLargeCommunities:
			for _, c := range a.Values {
				r.large = append(r.large, largeCommunity{c.ASN, c.LocalData1, c.LocalData2})
			}
		}
	}
	return r
}

// gatewayOf is the address a FIB route uses for a learned path: the
// global next hop, or the link-local one (on the session's interface,
// ifindex) when that is all there is.
func (r ribPath) gatewayOf(ifindex func(netip.Addr) int) (nexthop, bool) {
	switch {
	case r.nexthop.IsValid() && !r.nexthop.IsUnspecified() && !r.nexthop.IsLinkLocalUnicast():
		return nexthop{addr: r.nexthop}, true
	case r.llNexthop.IsValid() && r.llNexthop.IsLinkLocalUnicast():
		return nexthop{addr: r.llNexthop.WithZone(""), ifindex: ifindex(r.peer)}, true
	case r.nexthop.IsLinkLocalUnicast():
		return nexthop{addr: r.nexthop.WithZone(""), ifindex: ifindex(r.peer)}, true
	}
	return nexthop{}, false
}
