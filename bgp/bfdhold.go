package bgp

import (
	"context"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// bfdHoldMax bounds how long a graceful restart holds a peer's BGP session
// for its BFD session: a peer that does not answer BFD gets its session
// then, as it would have without the hold.
const bfdHoldMax = 10 * time.Second

// bfdHoldPoll is how often a held peer's BFD state is read.
const bfdHoldPoll = 100 * time.Millisecond

// holdsForBFD reports whether a peer added now opens its BGP session only
// once its BFD session is up: on a graceful restart, every peer with BFD.
//
// The peer's BFD session with the previous process outlives it by the
// peer's detection time (our multiplier x the negotiated interval): the
// peer drops our new process's packets (a new discriminator) until then.
// A BGP session opened before that expiry is taken down by it: BIRD resets
// it (bfd on) or restarts it gracefully (bfd graceful), FRR resets it
// unless it checks the control-plane-independent bit - and a session reset
// after our End-of-RIB no longer carries the Restart State bit, so the
// peer flushes our routes. Our new BFD session comes up only after the old
// one expired at the peer, so a session opened then is never hit by it.
// GoBGP runs BFD for a peer that is administratively down: the peer is
// added down and enabled when its BFD session is up, or after bfdHoldMax.
func holdsForBFD(p peer, restarting bool) bool {
	return restarting && p.session.bfd.enabled
}

// addPeer adds a peer to GoBGP: administratively down when it is held for
// BFD (holdsForBFD), so the caller then runs releaseOnBFDUp.
func addPeer(ctx context.Context, srv *gobgpServer, p peer, restarting bool) (held bool, err error) {
	req := p.session.apiPeer(restarting)
	held = holdsForBFD(p, restarting)
	req.Conf.AdminDown = held
	return held, srv.AddPeer(ctx, &api.AddPeerRequest{Peer: req})
}

// releaseOnBFDUp enables the held peer p once its BFD session is up, or
// after bfdHoldMax; it gives up when ctx ends (the speaker stops) or the
// peer is gone.
func (s *Speaker) releaseOnBFDUp(ctx context.Context, srv *gobgpServer, p peer) {
	addr := p.session.address.String()
	began := time.Now()
	t := time.NewTicker(bfdHoldPoll)
	defer t.Stop()
	up := false
	for time.Since(began) < bfdHoldMax {
		found := false
		err := srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr}, func(ap *api.Peer) {
			found = true
			up = ap.State != nil && ap.State.BfdState != nil && ap.State.BfdState.SessionState == api.BfdSessionState_BFD_SESSION_STATE_UP
		})
		if err != nil || !found {
			return // stopped, or the peer was removed or replaced
		}
		if up {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	if err := srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr}); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("bgp: enable peer after the BFD hold", "peer", p.name, "address", addr, "err", err)
		}
		return
	}
	if up {
		s.log.Info("bgp: BFD up: opening the session", "peer", p.name, "address", addr, "held", time.Since(began).Round(time.Millisecond))
	} else {
		s.log.Warn("bgp: no BFD session with the peer: opening the session anyway", "peer", p.name, "address", addr, "held", bfdHoldMax)
	}
}
