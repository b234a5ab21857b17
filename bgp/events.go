package bgp

import (
	"context"
	"fmt"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// watchOptions are the GoBGP events the speaker follows (see ribState):
// the UPDATEs received from peers and the paths GoBGP drops from a peer's
// Adj-RIB-In (the per-peer counts), session state changes and End-of-RIB
// markers. Best-path changes (the multipath deltas the FIB follows) have a
// watch of their own, started only once a peer imports (watchBest).
func watchOptions() []server.WatchOption {
	return []server.WatchOption{
		server.WatchUpdate(false, "", ""),
		server.WatchAdjInWithdraw(),
		server.WatchPeer(),
		server.WatchEor(false),
	}
}

// imports reports whether a peer's import policy accepts any prefix:
// without one, GoBGP's global RIB holds only our own paths.
func imports(peers []peer) bool {
	for _, p := range peers {
		if len(p.cfg.Import.Prefixes) > 0 {
			return true
		}
	}
	return false
}

// watchBest starts following GoBGP's best-path events for the rest of the
// run, once a peer imports (at Start, or at the Apply that gives a peer
// import prefixes, before its policies change). GoBGP converts every path
// of such an event for the callback, our own included: a node that
// originates 100,000 routes pays one event and one conversion per route
// when it loads them, for paths the FIB never takes (a load of 100,000
// with no session: 198 MB and 4.8 million objects allocated with the
// watch, 170 MB and 4.3 million without, 0.28-0.46 s more CPU). A node
// that imports nothing does not watch. The watch is never stopped before
// the run ends: the paths a peer had in the RIB leave it through
// best-path withdrawals (and the resync after an Apply).
// Called with s.mu held, or before the run is published.
func (s *Speaker) watchBest(r *run, peers []peer) error {
	if r.bestWatched || !imports(peers) {
		return nil
	}
	cb := server.WatchEventMessageCallbacks{
		OnBestPath: func(paths []*apiutil.Path, _ time.Time) {
			if r.rib.onBest(paths) {
				s.signal()
			}
		},
	}
	if err := r.srv.WatchEvent(r.ctx, cb, server.WatchBestPath(false)); err != nil {
		return fmt.Errorf("watch best paths: %w", err)
	}
	r.bestWatched = true
	return nil
}

// callbacks turn GoBGP's events (best-path changes aside: watchBest) into
// the RIB copy, tracker updates and FIB passes. They run on GoBGP's
// watcher goroutine, one event at a time in GoBGP's order, and must not
// block for long.
func (s *Speaker) callbacks(r *run) server.WatchEventMessageCallbacks {
	return server.WatchEventMessageCallbacks{
		OnPathUpdate: func(paths []*apiutil.Path, _ time.Time) {
			if r.rib.onUpdate(paths) {
				s.signal()
			}
		},
		OnPathEor: func(p *apiutil.Path, _ time.Time) {
			addr := p.PeerAddress.Unmap()
			r.tracker.endOfRIB(addr, familyOfRF(p.Family))
			rt, _ := r.tracker.snapshot(addr)
			if r.rib.endOfRIB(addr, rt.eor&rt.negotiated == rt.negotiated) {
				s.resync() // GoBGP dropped the stale paths not resent
			}
			s.signal() // the sync may be complete
		},
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			r.srv.changed() // sessions up or down change what is advertised
			if ev.Type == apiutil.PEER_EVENT_STATE {
				s.onPeerState(r, ev.Peer)
			}
		},
	}
}

func familyOfRF(f gobgp.Family) families {
	switch f {
	case gobgp.RF_IPv4_UC:
		return famIPv4
	case gobgp.RF_IPv6_UC:
		return famIPv6
	}
	return 0
}

func (s *Speaker) onPeerState(r *run, p apiutil.Peer) {
	addr := p.State.NeighborAddress.Unmap()
	up := p.State.SessionState == gobgp.BGP_FSM_ESTABLISHED
	rt, known := r.tracker.snapshot(addr)
	if !known {
		return
	}
	if up && !rt.up {
		neg := negotiated(p.State.RemoteCap)
		r.tracker.state(addr, true, neg, time.Now())
		r.trim.sessionUp(time.Now())
		extNH := extendedNexthopIPv4(p.State.RemoteCap)
		s.log.Info("bgp: session established", "peer", rt.name, "address", addr, "peer_as", p.State.PeerASN, "families", neg,
			"extended_nexthop", extNH)
		go s.noteCapabilities(r, addr, neg, extNH)
		if rt.external && p.State.PeerASN == p.State.LocalASN {
			// "external" accepts any AS but ours.
			msg := fmt.Sprintf("peer AS %d is our own AS but the peer is configured as external", p.State.PeerASN)
			s.log.Error("bgp: "+msg+": resetting", "peer", rt.name)
			go func() {
				_ = r.srv.ResetPeer(context.Background(), &api.ResetPeerRequest{Address: addr.String(), Communication: msg})
			}()
		}
	} else if !up && rt.up {
		why := p.State.DisconnectMessage
		if why == "" {
			why = p.State.DisconnectReason.String()
		}
		r.tracker.down(addr, why, time.Now())
		r.tracker.state(addr, false, 0, time.Now())
		r.rib.sessionDown(addr)
		s.log.Info("bgp: session down", "peer", rt.name, "address", addr, "state", stateName(p.State.SessionState),
			"reason", p.State.DisconnectReason.String(), "message", p.State.DisconnectMessage)
	}
	s.signal() // the sync may be complete, or never: see isSynced
}

// negotiated returns the unicast families the peer announced in its OPEN
// (Multiprotocol capabilities; none means IPv4 only, RFC 4760).
func negotiated(caps []gobgp.ParameterCapabilityInterface) families {
	var f families
	seen := false
	for _, c := range caps {
		if mp, ok := c.(*gobgp.CapMultiProtocol); ok {
			seen = true
			f |= familyOfRF(mp.CapValue)
		}
	}
	if !seen {
		return famIPv4
	}
	return f
}

func stateName(st gobgp.FSMState) string {
	switch st {
	case gobgp.BGP_FSM_IDLE:
		return "idle"
	case gobgp.BGP_FSM_CONNECT:
		return "connect"
	case gobgp.BGP_FSM_ACTIVE:
		return "active"
	case gobgp.BGP_FSM_OPENSENT:
		return "opensent"
	case gobgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	case gobgp.BGP_FSM_ESTABLISHED:
		return "established"
	}
	return "unknown"
}
