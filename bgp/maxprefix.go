package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// A peer over import.max-prefixes (counted after the import policy, over
// all families) is sent a NOTIFICATION Cease, subcode 1 "Maximum Number of
// Prefixes Reached" (RFC 4486), and held down for a backoff before it may
// reconnect: Options.MaxPrefixRetry (30 s) after the first time, doubling
// after each consecutive one up to maxPrefixBackoffCap; a peer that has
// not exceeded its limit for maxPrefixForget starts from the beginning.
//
// GoBGP's API has no call that sends Cease/1: its own prefix limit (per
// family, before the import policy) is the only code path that does. So
// the speaker arms that limit on the family in which the peer sent the
// most paths, just under what the peer sent (UpdatePeer with PrefixLimits;
// GoBGP trips it at once and holds the peer administratively down), and
// lifts it again before it enables the peer after the backoff. GoBGP sends
// that NOTIFICATION without the optional data (AFI, SAFI, upper bound). A
// peer that sent at most one path per family (limit 1) gets an
// administrative shutdown (Cease/2) with a message instead.

const (
	// DefaultMaxPrefixRetry is the first hold-down after max-prefixes.
	DefaultMaxPrefixRetry = 30 * time.Second
	// maxPrefixBackoffCap bounds the doubling hold-down.
	maxPrefixBackoffCap = 16
	// maxPrefixForget: a peer that stayed within its limit this long
	// starts again from DefaultMaxPrefixRetry.
	maxPrefixForget = 30 * time.Minute
)

// errCannotTrip: the peer sent too few paths in any one family for
// GoBGP's per-family limit.
var errCannotTrip = errors.New("no family with two paths or more")

// maxPrefixBackoff is the hold-down after the n-th consecutive time (n≥1).
func maxPrefixBackoff(first time.Duration, n int) time.Duration {
	return first * time.Duration(1<<min(n-1, 4)) // 1, 2, 4, 8, 16 times
}

// limitExceeded ends the session of the peer at addr, over its limit, and
// schedules its retry. Called from the reconciler.
func (s *Speaker) limitExceeded(ctx context.Context, r *run, addr netip.Addr) {
	now := time.Now()
	rt, backoff := r.tracker.limitHit(addr, now, s.o.MaxPrefixRetry)
	msg := fmt.Sprintf("maximum prefixes exceeded: %d accepted, limit %d", rt.accepted, rt.limit)
	s.log.Warn("bgp: peer exceeds import.max-prefixes: sending Cease/Maximum Number of Prefixes Reached and holding it down",
		"peer", rt.name, "address", addr, "accepted", rt.accepted, "limit", rt.limit, "retry_in", backoff, "times", rt.limitHits)
	err := tripPrefixLimit(ctx, r.srv, rt)
	if err == nil {
		r.tracker.sent(addr, newNotification(6, 1, now))
	} else {
		s.log.Warn("bgp: cannot end the session with Cease/1: administrative shutdown instead", "peer", rt.name, "err", err)
		r.tracker.sent(addr, newNotification(6, 2, now))
		err = r.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr.String(), Communication: msg})
	}
	if err != nil {
		s.log.Warn("bgp: max-prefixes: cannot end the session", "peer", rt.name, "err", err)
	}
	go s.retryAfterLimit(ctx, r, rt.key, addr, backoff)
}

// tripPrefixLimit arms GoBGP's prefix limit on the family in which the
// peer has the most accepted paths, below that count (GoBGP counts what
// the peer sent, at least as many): GoBGP sends Cease/1 and holds the peer
// administratively down. The neighbour is updated with the configuration
// it was added with plus the limit, so that GoBGP sees no other change
// (any other would make it delete and add the neighbour: Cease/6).
func tripPrefixLimit(ctx context.Context, srv *gobgpServer, rt peerRuntime) error {
	var fam families
	for f, n := range rt.acceptedBy {
		if n > rt.acceptedBy[fam] {
			fam = f
		}
	}
	n := rt.acceptedBy[fam]
	if n < 2 {
		return errCannotTrip
	}
	p := rt.session.apiPeer(false)
	for _, af := range p.AfiSafis {
		if familyOfAFI(af.Config.Family.Afi) == fam {
			af.PrefixLimits = &api.PrefixLimit{Family: af.Config.Family, MaxPrefixes: uint32(min(rt.limit, n-1))}
		}
	}
	if _, err := srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: p}); err != nil {
		return fmt.Errorf("arm prefix limit: %w", err)
	}
	return nil
}

// retryAfterLimit lifts the prefix limit and enables the peer after the
// backoff, unless the speaker stopped or the peer changed meanwhile.
func (s *Speaker) retryAfterLimit(ctx context.Context, r *run, key string, addr netip.Addr, backoff time.Duration) {
	t := time.NewTimer(backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != r {
		return
	}
	i := s.peerIndex(addr)
	if i < 0 || s.peers[i].key != key {
		return // deleted or replaced: a new neighbour starts enabled
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	if _, err := r.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: s.peers[i].session.apiPeer(false)}); err != nil {
		s.log.Warn("bgp: max-prefixes: lift the limit", "address", addr, "err", err)
	}
	if err := r.srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr.String()}); err != nil {
		s.log.Warn("bgp: max-prefixes: enable the peer", "address", addr, "err", err)
		return
	}
	s.log.Info("bgp: max-prefixes hold-down over: the peer may connect again", "address", addr, "after", backoff)
}
