package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/aird-net/aird/internal/config"
	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/proto"
)

// GoBGP applies import and export policy per peer only to route-server
// clients; for ordinary peers there is one global import and one global
// export policy. aird therefore builds a single policy per direction whose
// statements each start with a neighbour-set condition naming one peer.
// The names are fixed, so the assignments are made once at Start and a
// reload only replaces the definitions (SetPolicies), atomically.
const (
	importPolicy = "aird-import"
	exportPolicy = "aird-export"
)

// peerPolicy is what one peer's statements say, as a comparable
// fingerprint: when it changes across a reload, the peer gets a soft reset
// in that direction (no session reset).
type peerPolicy struct{ imp, exp string }

// policyState is what the policies depend on besides the configuration.
type policyState struct {
	drained bool
	// extNH holds the peers (by session address) that announced Extended
	// Next Hop for IPv4 unicast in their last OPEN.
	extNH map[netip.Addr]bool
}

// policySet is the whole policy configuration for GoBGP.
type policySet struct {
	req     *api.SetPoliciesRequest
	perPeer map[string]peerPolicy
}

// buildPolicies renders the import and export policy for the peers.
//
// Import: our own paths (AddPath) pass through the global import policy
// too, so they are accepted first; a peer's path is accepted only when its
// prefix matches one of the peer's import.prefixes; everything else is
// rejected (default).
//
// Export: only locally originated paths, per peer and family, with the
// [bgp] and peer communities added, the peer's MED and AS-path prepend, and
// the next hop planNexthop chooses; a family without a next hop the peer
// accepts has no statement. Everything else (routes learned from other
// peers) is rejected, so the node never becomes transit. While
// drained, every route also gets GRACEFUL_SHUTDOWN and drain.prepend more
// prepends.
//
// A peer without an address (unnumbered, not found yet) has no
// statements: a neighbour set without addresses would match every peer.
func buildPolicies(c *config.BGP, node config.Node, peers []peer, st policyState) (policySet, error) {
	ps := policySet{req: &api.SetPoliciesRequest{}, perPeer: map[string]peerPolicy{}}
	imp := &api.Policy{Name: importPolicy, Statements: []*api.Statement{{
		Name:       importPolicy + ":local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}
	exp := &api.Policy{Name: exportPolicy}
	for _, p := range peers {
		if !p.resolved() {
			ps.perPeer[p.key] = peerPolicy{}
			continue
		}
		nset := "peer:" + p.key
		ps.req.DefinedSets = append(ps.req.DefinedSets, &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR,
			Name:        nset,
			// GoBGP matches neighbours by address, without zone.
			List: []string{p.session.address.WithZone("").String()},
		})
		sets, stmts := importStatements(p, nset)
		ps.req.DefinedSets = append(ps.req.DefinedSets, sets...)
		imp.Statements = append(imp.Statements, stmts...)

		es, err := exportStatements(c, node, p, nset, st.drained, st.extNH[p.session.address])
		if err != nil {
			return policySet{}, err
		}
		exp.Statements = append(exp.Statements, es...)
		ps.perPeer[p.key] = peerPolicy{
			imp: fingerprint(sets) + fingerprint(stmts),
			exp: fingerprint(es),
		}
	}
	ps.req.Policies = []*api.Policy{imp, exp}
	return ps, nil
}

// importStatements accepts the peer's prefixes: one prefix set and one
// statement per family (GoBGP prefix sets hold one family).
func importStatements(p peer, nset string) ([]*api.DefinedSet, []*api.Statement) {
	var sets []*api.DefinedSet
	var stmts []*api.Statement
	for _, fam := range []families{famIPv6, famIPv4} {
		var prefixes []*api.Prefix
		for _, f := range p.cfg.Import.Prefixes {
			if familyOf(f.Prefix.Addr()) != fam || !p.session.families.has(fam) {
				continue
			}
			prefixes = append(prefixes, &api.Prefix{
				IpPrefix:      f.Prefix.String(),
				MaskLengthMin: uint32(f.GE),
				MaskLengthMax: uint32(f.LE),
			})
		}
		if len(prefixes) == 0 {
			continue
		}
		name := fmt.Sprintf("import:%s:%s", p.key, fam)
		sets = append(sets, &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX,
			Name:        name,
			Prefixes:    prefixes,
		})
		stmts = append(stmts, &api.Statement{
			Name: importPolicy + ":" + p.key + ":" + fam.String(),
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: name},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
		})
	}
	return sets, stmts
}

func exportStatements(c *config.BGP, node config.Node, p peer, nset string, drained, extNH bool) ([]*api.Statement, error) {
	comms, err := parseCommunities(c.Communities, p.cfg.Communities)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.path, err)
	}
	prepend := p.cfg.Prepend
	if drained {
		comms = append(comms, gracefulShutdown)
		slices.Sort(comms)
		comms = slices.Compact(comms)
		prepend += c.Drain.Prepend
	}
	large, err := parseLargeCommunities(c.LargeCommunities, p.cfg.LargeCommunities)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.path, err)
	}
	var stmts []*api.Statement
	for _, fam := range []families{famIPv6, famIPv4} {
		plan := planNexthop(node, p.session, fam, extNH)
		if !p.session.families.has(fam) || !plan.sendable {
			continue
		}
		a := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT}
		if len(comms) > 0 {
			l := make([]string, len(comms))
			for i, v := range comms {
				l[i] = strconv.FormatUint(uint64(v), 10)
			}
			a.Community = &api.CommunityAction{Type: api.CommunityAction_TYPE_ADD, Communities: l}
		}
		if len(large) > 0 {
			l := make([]string, len(large))
			for i, v := range large {
				l[i] = v.String()
			}
			a.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_TYPE_ADD, Communities: l}
		}
		if p.cfg.MED > 0 {
			a.Med = &api.MedAction{Type: api.MedAction_TYPE_REPLACE, Value: p.cfg.MED}
		}
		if prepend > 0 {
			a.AsPrepend = &api.AsPrependAction{Asn: uint32(c.ASN), Repeat: uint32(prepend)}
		}
		if plan.nexthop.IsValid() {
			a.Nexthop = &api.NexthopAction{Address: plan.nexthop.String()}
		}
		stmts = append(stmts, &api.Statement{
			Name: exportPolicy + ":" + p.key + ":" + fam.String(),
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset},
				RouteType:   api.Conditions_ROUTE_TYPE_LOCAL,
				AfiSafiIn:   []*api.Family{apiFamily(fam)},
			},
			Actions: a,
		})
	}
	return stmts, nil
}

// fingerprint serialises messages deterministically for comparison.
func fingerprint[M proto.Message](msgs []M) string {
	var b []byte
	for _, m := range msgs {
		out, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			// Cannot happen for these messages.
			return "error: " + err.Error()
		}
		b = append(b, out...)
		b = append(b, 0)
	}
	return string(b)
}

// assignments points the global import and export at our policies,
// rejecting whatever they do not accept.
func assignments() []*api.PolicyAssignment {
	return []*api.PolicyAssignment{
		{
			Name:          "global",
			Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
			Policies:      []*api.Policy{{Name: importPolicy}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		},
		{
			Name:          "global",
			Direction:     api.PolicyDirection_POLICY_DIRECTION_EXPORT,
			Policies:      []*api.Policy{{Name: exportPolicy}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		},
	}
}
