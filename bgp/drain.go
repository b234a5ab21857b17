package bgp

import (
	"context"
	"errors"
	"fmt"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// drainState is where a maintenance drain stands.
type drainState int

const (
	drainNone drainState = iota
	// drainAnnounced: the routes carry GRACEFUL_SHUTDOWN and the drain
	// prepends, so the switches move traffic to other nodes.
	drainAnnounced
	// drainWithdrawn: the routes are withdrawn; SetAdvertised only
	// records what to announce after Undrain.
	drainWithdrawn
)

// Drain takes the node out of service gracefully (RFC 8326): every route
// is announced again with the GRACEFUL_SHUTDOWN community (65535:0) and
// [bgp.drain] prepend more AS-path prepends, which makes the switches
// prefer other nodes while this one still forwards; after [bgp.drain] wait
// everything is withdrawn. Routes given to SetAdvertised meanwhile follow
// the drain. Sessions stay up and learned routes stay installed.
//
// If ctx ends during the wait, Drain returns its error and leaves the
// routes announced with GRACEFUL_SHUTDOWN (Drained stays true); an Undrain
// or Stop during the wait ends it with an error too. Draining a drained
// speaker does nothing. A restart keeps the drain: a drain marker in the
// state directory makes the next Start come up drained (see drainMarker).
func (s *Speaker) Drain(ctx context.Context) error {
	s.mu.Lock()
	if s.run == nil {
		s.mu.Unlock()
		return errors.New("bgp: drain: not running")
	}
	if s.drain == drainWithdrawn {
		s.mu.Unlock()
		return nil
	}
	s.drainGen++
	gen, wait := s.drainGen, s.cfg.Drain.Wait.D()
	if s.drain == drainNone {
		if err := newDrainMarker(s.o.StateDir).set(); err != nil {
			s.log.Warn("bgp: drain: a restart will not remember the drain", "err", err)
		}
		s.drain = drainAnnounced
		s.log.Info("bgp: draining: announcing graceful shutdown", "routes", s.advertised.len(), "prepend", s.cfg.Drain.Prepend, "wait", wait)
		if err := s.refreshExport(ctx); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("bgp: drain: %w", err)
		}
	}
	s.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("bgp: drain: %w (routes stay announced with graceful shutdown)", ctx.Err())
	case <-t.C:
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil || s.drainGen != gen {
		return errors.New("bgp: drain: interrupted by Undrain, Stop or another Drain")
	}
	s.drain = drainWithdrawn
	withdraw := s.advertised.list()
	n, err := deletePaths(s.run.srv, withdraw)
	if n == len(withdraw) {
		s.advertised = newRouteSet(0)
	} else {
		s.ownAdvertised()
		for _, lr := range withdraw[:n] {
			s.advertised.delete(lr.prefix)
		}
	}
	s.run.trim.routes.Store(int64(s.advertised.len()))
	s.run.trim.bulk(n, time.Now())
	if err != nil {
		return fmt.Errorf("bgp: drain: %w", err)
	}
	s.log.Info("bgp: drained: routes withdrawn", "routes", n)
	return nil
}

// Undrain ends a drain: the routes are announced again without
// GRACEFUL_SHUTDOWN and the drain prepends. It does nothing when the
// speaker is not drained.
func (s *Speaker) Undrain() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drain == drainNone {
		return nil
	}
	s.drainGen++
	s.drain = drainNone
	if err := newDrainMarker(s.o.StateDir).clear(); err != nil {
		s.log.Warn("bgp: undrain", "err", err)
	}
	if s.run == nil {
		return nil
	}
	s.log.Info("bgp: undraining: announcing the routes normally", "routes", s.desired.len())
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	var errs []error
	if err := s.refreshExport(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.advertised != s.desired { // else GoBGP holds them all
		if _, err := addPaths(s.run.srv, s.desired, s.advertised); err != nil {
			errs = append(errs, err)
		} else {
			s.advertised = s.desired
		}
	}
	s.run.trim.routes.Store(int64(s.advertised.len()))
	s.run.trim.bulk(s.advertised.len(), time.Now())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bgp: undrain: %w", err)
	}
	return nil
}

// Drained reports whether a drain is under way or done (until Undrain).
func (s *Speaker) Drained() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drain != drainNone
}

// refreshExport installs the export policy for the current drain state and
// sends every peer its routes again through it (soft reset out). Called
// with s.mu held on a running speaker.
func (s *Speaker) refreshExport(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	pols, err := buildPolicies(s.cfg, s.node, s.peers, s.policyState())
	if err != nil {
		return err
	}
	if err := s.run.srv.SetPolicies(ctx, pols.req); err != nil {
		return fmt.Errorf("set policies: %w", err)
	}
	s.policies = pols
	// Every session is sent every route again.
	s.run.trim.bulk(s.advertised.len()*len(s.peers), time.Now())
	var errs []error
	for _, p := range s.peers {
		if !p.resolved() {
			continue
		}
		err := s.run.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: p.session.address.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT})
		if err != nil {
			errs = append(errs, fmt.Errorf("soft reset out %s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}
