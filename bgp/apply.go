package bgp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aird-net/aird/internal/config"
	api "github.com/osrg/gobgp/v4/api"
)

// ErrRestartNeeded is returned by Apply for changes that only a restart of
// the speaker applies.
var ErrRestartNeeded = errors.New("restart needed")

// applyTimeout bounds the GoBGP calls of one Apply.
const applyTimeout = 30 * time.Second

// Apply moves the running speaker to a new [bgp] section and node
// addresses, touching only what changed:
//
//   - a peer added or removed is added or deleted;
//   - a peer whose session parameters changed (AS, password or its file's
//     contents, timers, families, multihop, ttl-security, passive,
//     graceful restart, BFD) is deleted and added again: that session
//     resets;
//   - unnumbered peers start or stop neighbour discovery on their
//     interface;
//   - a peer whose policy changed (import prefixes, communities, MED,
//     prepend, the node's underlay next hop) gets a soft reset in the
//     direction that changed: no session resets;
//   - import.max-prefixes applies at the next FIB pass.
//
// Other sessions are left alone. Changing asn, router-id, listen-port or
// grpc-socket returns an error wrapping ErrRestartNeeded and changes
// nothing. Everything that can fail before GoBGP is touched (password
// files, communities) is checked first, so a bad configuration changes
// nothing either.
func (s *Speaker) Apply(c *config.BGP, node config.Node) error {
	if c == nil {
		return errors.New("bgp: apply: no [bgp] section: removing the speaker takes Stop")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := restartNeeded(s.cfg, c); err != nil {
		return fmt.Errorf("bgp: apply: %w", err)
	}
	peers, err := buildPeers(c)
	if err != nil {
		return fmt.Errorf("bgp: apply: %w", err)
	}
	if s.run != nil {
		peers = resolvePeers(peers, s.run.discovered)
	}
	pols, err := buildPolicies(c, node, peers, s.policyState())
	if err != nil {
		return fmt.Errorf("bgp: apply: %w", err)
	}
	if s.run == nil {
		s.cfg, s.node, s.peers, s.policies = c, node, peers, pols
		return nil
	}
	// A peer that starts importing needs the best-path events before
	// its policy lets paths in.
	if err := s.watchBest(s.run, peers); err != nil {
		return fmt.Errorf("bgp: apply: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	changed, err := s.applyRunning(ctx, peers, pols)
	if changed {
		// Even when some peer failed: the next Apply (a rollback)
		// diffs against what GoBGP now holds. Soft resets out re-send
		// every route.
		s.run.trim.bulk(s.advertised.len(), time.Now())
		s.cfg, s.node, s.peers, s.policies = c, node, peers, pols
		s.syncWatches(s.run, peers)
		s.resync() // soft resets in re-evaluate the RIB without UPDATEs
	}
	if err != nil {
		return fmt.Errorf("bgp: apply: %w", err)
	}
	return nil
}

// restartNeeded reports global changes that Apply cannot make.
func restartNeeded(old, c *config.BGP) error {
	var what []string
	if old.ASN != c.ASN {
		what = append(what, fmt.Sprintf("asn %d -> %d", old.ASN, c.ASN))
	}
	if old.RouterID != c.RouterID {
		what = append(what, fmt.Sprintf("router-id %s -> %s", old.RouterID, c.RouterID))
	}
	if old.ListenPort != c.ListenPort {
		what = append(what, fmt.Sprintf("listen-port %d -> %d", old.ListenPort, c.ListenPort))
	}
	if old.GRPCSocket != c.GRPCSocket {
		what = append(what, fmt.Sprintf("grpc-socket %q -> %q", old.GRPCSocket, c.GRPCSocket))
	}
	if len(what) == 0 {
		return nil
	}
	return fmt.Errorf("changing %v: %w (systemctl restart aird; sessions restart gracefully)", what, ErrRestartNeeded)
}

// peerChange is what Apply does to one peer.
type peerChange int

const (
	add peerChange = iota
	remove
	reset   // delete and add: the session restarts
	softIn  // import policy changed
	softOut // export policy changed
)

// applyRunning moves GoBGP from s.peers to peers; it reports whether it
// changed anything. Peers without an address (unnumbered, not found yet)
// are not in GoBGP: one that gets an address is added, one that loses it
// deleted, one whose address changed deleted and added again.
func (s *Speaker) applyRunning(ctx context.Context, peers []peer, pols policySet) (bool, error) {
	r := s.run
	old := map[string]peer{}
	for _, p := range s.peers {
		old[p.key] = p
	}
	type change struct {
		p, old peer
		what   []peerChange
	}
	var changes []change
	for _, p := range peers {
		o, ok := old[p.key]
		delete(old, p.key)
		switch {
		case !ok || !o.resolved():
			if p.resolved() {
				changes = append(changes, change{p: p, what: []peerChange{add}})
			}
		case !p.resolved():
			changes = append(changes, change{p: o, what: []peerChange{remove}})
		case o.session != p.session:
			changes = append(changes, change{p: p, old: o, what: []peerChange{reset}})
		default:
			var w []peerChange
			op, np := s.policies.perPeer[p.key], pols.perPeer[p.key]
			if op.imp != np.imp {
				w = append(w, softIn)
			}
			if op.exp != np.exp {
				w = append(w, softOut)
			}
			if len(w) > 0 {
				changes = append(changes, change{p: p, what: w})
			}
		}
	}
	for _, o := range s.peers {
		if _, gone := old[o.key]; gone && o.resolved() {
			changes = append(changes, change{p: o, what: []peerChange{remove}})
		}
	}

	// New definitions first: an added peer must never see GoBGP's
	// accept-all. The assignments name the policies and stay. The RIB
	// copy's filters change first; the resync that follows puts right
	// what was counted meanwhile.
	r.rib.setFilters(peers)
	if err := r.srv.SetPolicies(ctx, pols.req); err != nil {
		return false, fmt.Errorf("set policies: %w", err)
	}
	r.tracker.setPeers(peers)
	var errs []error
	for _, c := range changes {
		for _, w := range c.what {
			if err := s.applyPeer(ctx, r, c.p, c.old, w); err != nil {
				errs = append(errs, fmt.Errorf("peer %s: %w", c.p.name, err))
			}
		}
	}
	return true, errors.Join(errs...)
}

// applyPeer makes one change; old is the peer being replaced by a reset.
func (s *Speaker) applyPeer(ctx context.Context, r *run, p, old peer, w peerChange) error {
	addr := p.session.address.String()
	switch w {
	case add:
		restarting := r.restartingPeer(p.key)
		s.log.Info("bgp: adding peer", "peer", p.name, "address", addr, "restarting", restarting, "held_for_bfd", holdsForBFD(p, restarting))
		held, err := addPeer(ctx, r.srv, p, restarting)
		if held && err == nil {
			go s.releaseOnBFDUp(r.ctx, r.srv, p)
		}
		return err
	case remove:
		s.log.Info("bgp: removing peer", "peer", p.name, "address", addr)
		return r.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr})
	case reset:
		oldAddr := old.session.address.String()
		if oldAddr != addr {
			s.log.Info("bgp: peer address changed: replacing the session", "peer", p.name, "old", oldAddr, "address", addr)
		} else {
			s.log.Info("bgp: peer session parameters changed: resetting the session", "peer", p.name, "address", addr)
		}
		if err := r.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: oldAddr}); err != nil {
			return err
		}
		r.tracker.reset(p.key)
		return r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p.session.apiPeer(false)})
	case softIn:
		s.log.Info("bgp: import policy changed: soft reset in", "peer", p.name)
		return r.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr, Soft: true, Direction: api.ResetPeerRequest_DIRECTION_IN})
	case softOut:
		s.log.Info("bgp: export policy changed: soft reset out", "peer", p.name)
		return r.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr, Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT})
	}
	return nil
}
