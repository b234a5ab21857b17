package bgp

import (
	"net/netip"

	"github.com/aird-net/aird/internal/config"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// What our routes of each family carry as next hop on a session, and
// whether they can be sent at all. GoBGP announces the Extended Next Hop
// capability (RFC 8950) for IPv4 unicast in every OPEN but never looks at
// whether the peer announced it too: left alone it sends IPv4 NLRI with a
// 16-byte next hop to any peer over an IPv6 session, and a peer without
// the capability (the default of most vendors) answers with an UPDATE
// error NOTIFICATION and the session flaps. So the export policy decides:
//
//   - IPv6 routes carry the node's IPv6 underlay address, else the
//     session's local address (link-local on an unnumbered session). On
//     an IPv4 session without an IPv6 underlay address there is no IPv6
//     next hop: IPv6 routes are not sent.
//   - IPv4 routes carry the node's IPv4 underlay address on any numbered
//     session (every peer takes a 4-byte next hop, sent as NEXT_HOP), else
//     the session's local address on an IPv4 session. Over an IPv6 session
//     without an IPv4 underlay address, and over any unnumbered session,
//     the only next hop is an IPv6 one: IPv4 routes are sent to a peer
//     only once it announced Extended Next Hop for IPv4 unicast in its
//     OPEN (see Speaker.noteCapabilities); until then, and for a peer that
//     never does, they are not sent, which Neighbors and the metrics say.

// nexthopPlan is what the export policy does for one family on a session.
type nexthopPlan struct {
	// sendable: routes of the family go to the peer.
	sendable bool
	// nexthop is set by the export policy; invalid leaves GoBGP's
	// choice, the session's local address.
	nexthop netip.Addr
	// needsExtNH: the next hop is IPv6 for IPv4 routes (RFC 8950).
	needsExtNH bool
	// why the family is not sendable.
	why string
}

// planNexthop decides the next hop of our routes of family fam on session
// s; extNH says the peer announced Extended Next Hop for IPv4 unicast.
func planNexthop(node config.Node, s session, fam families, extNH bool) nexthopPlan {
	v4, v6 := underlay(node, famIPv4), underlay(node, famIPv6)
	sessionFam := familyOf(s.address)
	if fam == famIPv6 {
		switch {
		case s.linkLocal():
			// The switch takes only an on-link next hop: GoBGP's local
			// address, ours on the interface.
			return nexthopPlan{sendable: true}
		case v6.IsValid():
			return nexthopPlan{sendable: true, nexthop: v6}
		case sessionFam == famIPv6:
			return nexthopPlan{sendable: true}
		}
		return nexthopPlan{why: "no IPv6 next hop: node.underlay has no IPv6 address and the session is IPv4"}
	}
	switch {
	case !s.linkLocal() && v4.IsValid():
		return nexthopPlan{sendable: true, nexthop: v4}
	case !s.linkLocal() && sessionFam == famIPv4:
		return nexthopPlan{sendable: true}
	case extNH && s.linkLocal():
		return nexthopPlan{sendable: true, needsExtNH: true}
	case extNH:
		return nexthopPlan{sendable: true, needsExtNH: true, nexthop: v6}
	case s.linkLocal():
		return nexthopPlan{needsExtNH: true, why: "no IPv4 next hop: the peer did not announce extended next hop (RFC 8950) for IPv4 and the session is unnumbered"}
	}
	return nexthopPlan{needsExtNH: true, why: "no IPv4 next hop: the peer did not announce extended next hop (RFC 8950) for IPv4 and node.underlay has no IPv4 address"}
}

// dependsOnExtNH reports whether what session s sends depends on the
// peer's Extended Next Hop capability.
func dependsOnExtNH(node config.Node, s session) bool {
	return s.families.has(famIPv4) && planNexthop(node, s, famIPv4, false).needsExtNH
}

// underlay is the node's non-link-local underlay address of family fam.
func underlay(node config.Node, fam families) netip.Addr {
	for _, a := range node.Underlay {
		if a = a.Unmap(); familyOf(a) == fam && !a.IsLinkLocalUnicast() {
			return a
		}
	}
	return netip.Addr{}
}

// extendedNexthopIPv4 reports whether capabilities (a peer's OPEN) include
// Extended Next Hop for IPv4 unicast with IPv6 next hops (RFC 8950).
func extendedNexthopIPv4(caps []gobgp.ParameterCapabilityInterface) bool {
	for _, c := range caps {
		enh, ok := c.(*gobgp.CapExtendedNexthop)
		if !ok {
			continue
		}
		for _, t := range enh.Tuples {
			if t.NLRIAFI == gobgp.AFI_IP && t.NLRISAFI == uint16(gobgp.SAFI_UNICAST) && t.NexthopAFI == gobgp.AFI_IP6 {
				return true
			}
		}
	}
	return false
}
