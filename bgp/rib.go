package bgp

import (
	"context"
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
	id        uint32     // the path identifier (ADD-PATH), 0 without
	nexthop   netip.Addr
	llNexthop netip.Addr // link-local next hop of an IPv6 MP_REACH, if any
	best      bool       // the best path or one of the multipath set
	stale     bool       // kept for a peer in graceful restart
	age       time.Time
	asPath    []uint32
	comms     []uint32
	large     []largeCommunity
}

// walkGlobalBelow: see readLearned.
const walkGlobalBelow = 10000

// readRIB walks GoBGP's global RIB for both unicast families: every path,
// ours included. readLearned is the cheap way to get only learned paths.
func readRIB(srv *server.BgpServer) ([]ribPath, error) {
	var out []ribPath
	for _, fam := range []gobgp.Family{gobgp.RF_IPv6_UC, gobgp.RF_IPv4_UC} {
		req := apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam}
		if err := srv.ListPath(req, collectPaths(&out, false, false)); err != nil {
			return nil, fmt.Errorf("list paths %s: %w", fam, err)
		}
	}
	return out, nil
}

// readLearned returns the paths of GoBGP's global RIB (what the import
// policy accepted) that came from peers, without touching our own: GoBGP
// copies (Select) every destination it lists, and a node may originate
// 100,000 routes. It collects the prefixes each neighbour sent (its
// Adj-RIB-In, which holds only what that peer sent, stale paths of a
// restarting peer included) and looks up only those in the global RIB, so
// that best-path and multipath flags are the global RIB's.
//
// When the node originates fewer than walkGlobalBelow routes (own), that
// detour costs more than it saves: the global RIB is walked once, our own
// paths skipped, instead of walking every Adj-RIB-In and then looking up
// each prefix (100,000 lookups by string).
//
// With fibOnly the paths carry only what the FIB needs (no AS path, no
// communities): far less garbage per pass during a bulk load.
func readLearned(ctx context.Context, srv *server.BgpServer, fibOnly bool, own int) ([]ribPath, error) {
	if own < walkGlobalBelow {
		var out []ribPath
		for _, fam := range []gobgp.Family{gobgp.RF_IPv6_UC, gobgp.RF_IPv4_UC} {
			req := apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam}
			if err := srv.ListPath(req, collectPaths(&out, true, fibOnly)); err != nil {
				return nil, fmt.Errorf("list paths %s: %w", fam, err)
			}
		}
		return out, nil
	}
	neighbours, err := neighbourAddrs(ctx, srv)
	if err != nil {
		return nil, err
	}
	var out []ribPath
	for _, fam := range []gobgp.Family{gobgp.RF_IPv6_UC, gobgp.RF_IPv4_UC} {
		lookups, err := receivedPrefixes(ctx, srv, neighbours, fam)
		if err != nil {
			return nil, err
		}
		if len(lookups) == 0 {
			continue
		}
		req := apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam, Prefixes: lookups}
		if err := srv.ListPath(req, collectPaths(&out, true, fibOnly)); err != nil {
			return nil, fmt.Errorf("list paths %s: %w", fam, err)
		}
	}
	return out, nil
}

// collectPaths is a ListPath callback appending flattened paths to out;
// with learnedOnly it skips our own; with fibOnly it leaves out the AS path
// and the communities.
func collectPaths(out *[]ribPath, learnedOnly, fibOnly bool) func(gobgp.NLRI, []*apiutil.Path) {
	return func(nlri gobgp.NLRI, paths []*apiutil.Path) {
		prefix, ok := nlriPrefix(nlri)
		if !ok {
			return
		}
		for _, p := range paths {
			if p.Withdrawal || (learnedOnly && !p.PeerAddress.IsValid()) {
				continue
			}
			*out = append(*out, flattenPath(prefix, p, fibOnly))
		}
	}
}

// neighbourAddrs lists GoBGP's neighbours as they were added.
func neighbourAddrs(ctx context.Context, srv *server.BgpServer) ([]string, error) {
	var out []string
	err := srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetConf().GetNeighborAddress() != "" {
			out = append(out, p.GetConf().GetNeighborAddress())
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	return out, nil
}

// receivedPrefixes returns, as exact lookups, the prefixes of family fam
// that the neighbours sent. A neighbour deleted meanwhile (a reload) is
// skipped: GoBGP removed its paths with it.
func receivedPrefixes(ctx context.Context, srv *server.BgpServer, neighbours []string, fam gobgp.Family) ([]*apiutil.LookupPrefix, error) {
	seen := map[netip.Prefix]bool{}
	var lookups []*apiutil.LookupPrefix
	add := func(nlri gobgp.NLRI, _ []*apiutil.Path) {
		if p, ok := nlriPrefix(nlri); ok && !seen[p] {
			seen[p] = true
			lookups = append(lookups, &apiutil.LookupPrefix{Prefix: p.String(), LookupOption: apiutil.LOOKUP_EXACT})
		}
	}
	for _, addr := range neighbours {
		req := apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: addr, Family: fam}
		if err := srv.ListPath(req, add); err != nil {
			if gone, lerr := neighbourGone(ctx, srv, addr); lerr == nil && gone {
				continue
			}
			return nil, fmt.Errorf("list paths from %s %s: %w", addr, fam, err)
		}
	}
	return lookups, nil
}

func neighbourGone(ctx context.Context, srv *server.BgpServer, addr string) (bool, error) {
	found := false
	err := srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr}, func(*api.Peer) { found = true })
	return !found, err
}

func nlriPrefix(n gobgp.NLRI) (netip.Prefix, bool) {
	if p, ok := n.(*gobgp.IPAddrPrefix); ok {
		return p.Prefix.Masked(), p.Prefix.IsValid()
	}
	p, err := netip.ParsePrefix(n.String())
	return p.Masked(), err == nil
}

func flattenPath(prefix netip.Prefix, p *apiutil.Path, fibOnly bool) ribPath {
	r := ribPath{
		prefix: prefix,
		local:  !p.PeerAddress.IsValid(),
		peer:   p.PeerAddress.Unmap(),
		id:     p.RemoteID,
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
		}
		if fibOnly {
			continue
		}
		switch a := a.(type) {
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

// gatewayOf is the address a FIB route uses for a learned path from peer:
// the global next hop, or the link-local one (on the session's interface,
// ifindex) when that is all there is.
func gatewayOf(nh, ll, peer netip.Addr, ifindex func(netip.Addr) int) (nexthop, bool) {
	switch {
	case nh.IsValid() && !nh.IsUnspecified() && !nh.IsLinkLocalUnicast():
		return nexthop{addr: nh}, true
	case ll.IsValid() && ll.IsLinkLocalUnicast():
		return nexthop{addr: ll.WithZone(""), ifindex: ifindex(peer)}, true
	case nh.IsLinkLocalUnicast():
		return nexthop{addr: nh.WithZone(""), ifindex: ifindex(peer)}, true
	}
	return nexthop{}, false
}
