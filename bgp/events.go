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

// watchOptions are the GoBGP events the speaker follows: UPDATEs received
// from peers (not best-path changes: the watcher converts every path of a
// best-path event, ours included, which never go to the FIB; with 100,000
// routes that was about a tenth of the allocations of a bulk load),
// session state changes and End-of-RIB markers. Paths that GoBGP drops
// without an UPDATE follow a session state change (peer down, graceful-
// restart timer expiry, both reported as state events) or an End-of-RIB;
// the periodic resync pass backs all of it up.
func watchOptions() []server.WatchOption {
	return []server.WatchOption{server.WatchUpdate(false, "", ""), server.WatchPeer(), server.WatchEor(false)}
}

// callbacks turn GoBGP's events into tracker updates and FIB passes. They
// run on GoBGP's watcher goroutine and must not block.
func (s *Speaker) callbacks(r *run) server.WatchEventMessageCallbacks {
	return server.WatchEventMessageCallbacks{
		OnPathUpdate: func(paths []*apiutil.Path, _ time.Time) {
			prefixes := make([]netip.Prefix, 0, len(paths))
			for _, p := range paths {
				if prefix, ok := nlriPrefix(p.Nlri); ok {
					prefixes = append(prefixes, prefix)
				}
			}
			s.kickPaths(r, prefixes)
		},
		OnPathEor: func(p *apiutil.Path, _ time.Time) {
			r.tracker.endOfRIB(p.PeerAddress.Unmap(), familyOfRF(p.Family))
			s.kick()
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
		s.log.Info("bgp: session down", "peer", rt.name, "address", addr, "state", stateName(p.State.SessionState),
			"reason", p.State.DisconnectReason.String(), "message", p.State.DisconnectMessage)
	}
	s.kick()
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
