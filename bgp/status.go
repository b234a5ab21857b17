package bgp

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/aird-net/aird/internal/config"
	api "github.com/osrg/gobgp/v4/api"
)

// statusTimeout bounds the GoBGP calls behind Neighbors and Routes.
const statusTimeout = 5 * time.Second

// Neighbor is the state of one configured peer, for airctl and the API.
type Neighbor struct {
	Name string
	// Address is the peer's address; for an unnumbered peer the
	// link-local address found on Interface (invalid while none is).
	Address netip.Addr
	// Interface is set for an unnumbered peer.
	Interface string
	// PeerASN is the configured AS, or the one the peer sent when it is
	// "external".
	PeerASN  uint32
	LocalASN uint32
	// State is the session state: idle, connect, active, opensent,
	// openconfirm, established; "stopped" when the speaker does not run.
	State string
	// Since is when the session was established (zero when it is not).
	Since time.Time
	// Uptime is how long it has been established.
	Uptime time.Duration
	// Received counts the paths the peer sent (Adj-RIB-In), Accepted
	// those the import policy let in, Advertised those we send it.
	Received, Accepted, Advertised int
	// MaxPrefixes is import.max-prefixes.
	MaxPrefixes int
	// Families lists the configured address families.
	Families []string
	// FamilyStatus says, per configured family, whether our routes of
	// that family go to the peer, and with which next hop.
	FamilyStatus []FamilyStatus
	// ExtendedNextHop: the peer announced Extended Next Hop (RFC 8950)
	// for IPv4 unicast in its last OPEN.
	ExtendedNextHop bool
	// BFD is the BFD session state (down, init, up, admin-down); empty
	// when BFD is off for the peer.
	BFD string
	// StateSince is when the session last changed between established
	// and not (or when the peer was added): the session's uptime, or
	// how long it has been down.
	StateSince time.Time
	// LastError says why the session last went down, if it did.
	LastError string
	// LastSent and LastReceived are the last NOTIFICATIONs sent to and
	// received from the peer, decoded (nil: none since the start).
	LastSent, LastReceived *Notification
	// Hint suggests what to check when a session does not come up.
	Hint string
}

// FamilyStatus is one configured address family of a peer.
type FamilyStatus struct {
	Family string // "ipv6" or "ipv4"
	// State is "sent" (negotiated: our routes of the family go to the
	// peer), "not-negotiated" (the peer did not announce the family in
	// its OPEN), "not-sendable" (no next hop the peer accepts: see
	// Reason) or "down" (no established session).
	State string
	// NextHop is the next hop our routes carry; invalid when it is the
	// session's local address (chosen by GoBGP) or nothing is sent.
	NextHop netip.Addr
	Reason  string
}

// Family states of FamilyStatus.
const (
	FamilySent          = "sent"
	FamilyNotNegotiated = "not-negotiated"
	FamilyNotSendable   = "not-sendable"
	FamilyDown          = "down"
)

// familyStatus fills n.FamilyStatus for peer p.
func familyStatus(n *peerStatus, node config.Node, p peer, rt peerRuntime, extNH bool) {
	n.ExtendedNextHop = extNH
	for _, name := range p.cfg.Families {
		fam := familyNamed(name)
		fs := FamilyStatus{Family: name, State: FamilyDown}
		switch {
		case n.State != "established":
		case !rt.negotiated.has(fam):
			fs.State, fs.Reason = FamilyNotNegotiated, "the peer did not announce the family"
		default:
			plan := planNexthop(node, p.session, fam, extNH)
			fs.State, fs.NextHop, fs.Reason = FamilySent, plan.nexthop, plan.why
			if !plan.sendable {
				fs.State = FamilyNotSendable
			}
		}
		n.FamilyStatus = append(n.FamilyStatus, fs)
	}
}

// familyCounts are a peer's path counts in one family.
type familyCounts struct{ received, accepted, advertised int }

// peerStatus is a Neighbor with what the metrics also want.
type peerStatus struct {
	Neighbor
	byFamily map[families]familyCounts
	flaps    uint64
}

// Neighbors returns the configured peers in configuration order.
func (s *Speaker) Neighbors() []Neighbor {
	st := s.status(false)
	out := make([]Neighbor, len(st))
	for i, p := range st {
		out[i] = p.Neighbor
	}
	return out
}

// status reads the peers' state from GoBGP and the tracker. For a scrape
// the advertised counts may lag (see advertisedCounts).
func (s *Speaker) status(scrape bool) []peerStatus {
	s.mu.Lock()
	peers, r, node, extNH := slices.Clone(s.peers), s.run, s.node, maps.Clone(s.extNH)
	s.mu.Unlock()
	out := make([]peerStatus, 0, len(peers))
	byAddr := map[netip.Addr]*api.Peer{}
	var advertised map[netip.Addr]map[families]int
	if r != nil {
		ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
		defer cancel()
		err := r.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			if p.Conf == nil {
				return
			}
			if a, err := netip.ParseAddr(p.Conf.NeighborAddress); err == nil {
				byAddr[a.Unmap()] = p
			}
		})
		if err != nil {
			s.log.Warn("bgp: list peers", "err", err)
		}
		if advertised, err = r.advertised.get(ctx, r.srv, scrape); err != nil {
			s.log.Warn("bgp: count advertised routes", "err", err)
		}
	}
	for _, p := range peers {
		n := peerStatus{Neighbor: Neighbor{
			Name:        p.name,
			Address:     p.session.address,
			Interface:   p.session.iface,
			PeerASN:     p.session.peerAS,
			LocalASN:    p.session.localAS,
			State:       "stopped",
			MaxPrefixes: p.cfg.Import.MaxPrefixes,
			Families:    slices.Clone(p.cfg.Families),
		}}
		if p.session.bfd.enabled {
			n.BFD = "down"
		}
		if r != nil {
			n.State = "idle"
			rt, _ := r.tracker.byKey(p.key)
			n.Accepted, n.flaps = rt.accepted, rt.flaps
			if ap := byAddr[p.session.address]; p.resolved() && ap != nil {
				fillNeighbor(&n, ap, rt.acceptedBy, advertised[p.session.address])
			}
			n.LastError, n.LastSent, n.LastReceived = rt.lastError, rt.lastSent, rt.lastReceived
			n.StateSince = rt.changed
			if !p.resolved() {
				n.LastError = "waiting for the peer on " + p.session.iface + " (IPv6 neighbour discovery)"
			}
			n.Hint = hint(p, rt, n.State, time.Now())
			familyStatus(&n, node, p, rt, extNH[p.session.address])
		}
		out = append(out, n)
	}
	return out
}

func fillNeighbor(n *peerStatus, p *api.Peer, accepted famCounts, advertised map[families]int) {
	if st := p.State; st != nil {
		n.State = sessionStateName(st.SessionState)
		if n.PeerASN == 0 {
			n.PeerASN = st.PeerAsn
		}
		if n.BFD != "" && st.BfdState != nil {
			n.BFD = bfdStateName(st.BfdState.SessionState)
		}
	}
	if n.State == "established" && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
		n.Since = p.Timers.State.Uptime.AsTime()
		n.Uptime = time.Since(n.Since).Round(time.Second)
	}
	n.byFamily = map[families]familyCounts{}
	for _, af := range p.AfiSafis {
		if af.State == nil || af.Config == nil || af.Config.Family == nil {
			continue
		}
		f := familyOfAFI(af.Config.Family.Afi)
		n.Received += int(af.State.Received)
		n.Advertised += advertised[f]
		n.byFamily[f] = familyCounts{
			received:   int(af.State.Received),
			accepted:   accepted[f],
			advertised: advertised[f],
		}
	}
}

func sessionStateName(st api.PeerState_SessionState) string {
	switch st {
	case api.PeerState_SESSION_STATE_IDLE:
		return "idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "opensent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "established"
	}
	return "unknown"
}

// advertisedView gives our paths, as GoBGP's RIB holds them (next hop
// unspecified, the route's own communities), what every peer is sent
// besides its own communities, MED and prepends: the underlay next hop of
// the family and the [bgp] communities (and GRACEFUL_SHUTDOWN while
// drained). RouteQuery.Peer shows one peer's exact view.
type advertisedView struct {
	node    config.Node
	drained bool
	comms   []uint32
	large   []largeCommunity
}

func (v advertisedView) apply(p *ribPath) {
	if !p.local {
		return
	}
	fam := familyOf(p.prefix.Addr())
	nh := underlay(v.node, fam)
	if !nh.IsValid() && fam == famIPv4 {
		nh = underlay(v.node, famIPv6) // to peers with extended next hop
	}
	p.nexthop = nh // invalid: each session's own address
	comms := slices.Concat(p.comms, v.comms)
	if v.drained {
		comms = append(comms, gracefulShutdown)
	}
	slices.Sort(comms)
	p.comms = slices.Compact(comms)
	large := slices.Concat(p.large, v.large)
	slices.SortFunc(large, compareLarge)
	p.large = slices.Compact(large)
}

// RouteQuery selects routes for Routes.
type RouteQuery struct {
	// Advertised selects the routes this node originates; otherwise the
	// routes learned from peers (accepted by the import policy).
	Advertised bool
	// Peer keeps only routes learned from this peer address; with
	// Advertised, it lists what is sent to that peer (its Adj-RIB-Out,
	// after its export policy).
	Peer netip.Addr
	// Prefix keeps only this exact prefix.
	Prefix netip.Prefix
}

// RouteEntry is one path of the RIB.
type RouteEntry struct {
	Prefix netip.Prefix
	// Peer and PeerAddress name who sent a learned route; empty for our
	// own.
	Peer             string
	PeerAddress      netip.Addr
	NextHop          netip.Addr
	ASPath           []uint32
	Communities      []string
	LargeCommunities []string
	// Best is set for the selected path and the rest of its multipath
	// (ECMP) set.
	Best bool
	// Stale is set for a route kept while its peer restarts.
	Stale bool
	// Installed is set for a learned route in the kernel FIB.
	Installed bool
	Age       time.Duration
}

// Routes lists RIB paths, sorted by prefix.
func (s *Speaker) Routes(q RouteQuery) ([]RouteEntry, error) {
	s.mu.Lock()
	r := s.run
	names := map[netip.Addr]string{}
	for _, p := range s.peers {
		names[p.session.address] = p.name
	}
	view := advertisedView{node: s.node, drained: s.drain != drainNone}
	var cerr error
	view.comms, cerr = parseCommunities(s.cfg.Communities)
	if cerr == nil {
		view.large, cerr = parseLargeCommunities(s.cfg.LargeCommunities)
	}
	s.mu.Unlock()
	if r == nil {
		return nil, nil
	}
	if cerr != nil {
		return nil, fmt.Errorf("bgp: routes: %w", cerr)
	}
	var paths []ribPath
	var err error
	switch {
	case q.Advertised && q.Peer.IsValid():
		paths, err = readAdjOut(r.srv.BgpServer, q.Peer)
	case q.Advertised:
		paths, err = readRIB(r.srv.BgpServer)
		for i := range paths {
			view.apply(&paths[i])
		}
	default:
		ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
		paths, err = readLearned(ctx, r.srv.BgpServer, false, int(r.trim.routes.Load()))
		cancel()
	}
	if err != nil {
		return nil, err
	}
	var out []RouteEntry
	for _, p := range paths {
		switch {
		case p.local != q.Advertised,
			!q.Advertised && q.Peer.IsValid() && p.peer != q.Peer.Unmap(),
			q.Prefix.IsValid() && p.prefix != q.Prefix:
			continue
		}
		e := RouteEntry{
			Prefix:      p.prefix,
			PeerAddress: p.peer,
			Peer:        names[p.peer],
			NextHop:     p.nexthop,
			ASPath:      p.asPath,
			Best:        p.best,
			Stale:       p.stale,
			Age:         time.Since(p.age).Round(time.Second),
		}
		for _, c := range p.comms {
			e.Communities = append(e.Communities, communityString(c))
		}
		for _, c := range p.large {
			e.LargeCommunities = append(e.LargeCommunities, c.String())
		}
		if !p.local {
			e.Installed = r.fib.installed(p.prefix, p.nexthop)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b RouteEntry) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := a.Prefix.Bits() - b.Prefix.Bits(); c != 0 {
			return c
		}
		return a.PeerAddress.Compare(b.PeerAddress)
	})
	return out, nil
}
