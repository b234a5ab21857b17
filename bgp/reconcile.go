package bgp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"time"
)

const (
	// settle batches bursts of RIB events into one FIB pass. While the
	// FIB is changing (the last pass changed it less than settle ago: a
	// peer's table arriving or going), the events that came in during
	// that pass are the batch, and the next pass starts bulkSpacing after
	// it: waiting the whole settle again only added to the time the FIB
	// lags behind the RIB, and made the last batch wait for nothing.
	settle      = 100 * time.Millisecond
	bulkSpacing = 10 * time.Millisecond
	// resync is the period of the kernel check even without events: it
	// puts back routes the kernel dropped (an interface went down and
	// up); the tick also refreshes the restart marker. A check that took
	// long waits dumpSpacing times as long before the next one, and none
	// runs while the FIB is changing (a pass changed it within dumpQuiet:
	// a peer's table arriving or going, when reading 100,000 routes back
	// only slows the load down), unless the last one is maxDumpDelay old.
	resync       = 5 * time.Second
	dumpSpacing  = 20
	dumpQuiet    = time.Second
	maxDumpDelay = 30 * time.Second
)

// kick asks the reconciler for a full pass (every learned prefix compared
// with what we installed); it never blocks (callers may hold s.mu).
func (s *Speaker) kick() {
	s.fullPass.Store(true)
	s.signal()
}

// resync asks the reconciler to read GoBGP's RIB into its copy first (see
// ribState), then make a full pass; it never blocks.
func (s *Speaker) resync() {
	s.resyncRIB.Store(true)
	s.kick()
}

func (s *Speaker) signal() {
	select {
	case s.kickCh <- struct{}{}:
	default:
	}
}

// reconcileLoop runs FIB passes until ctx ends.
func (s *Speaker) reconcileLoop(ctx context.Context, r *run) {
	defer close(r.loopDone)
	tick := time.NewTicker(resync)
	defer tick.Stop()
	deadline := time.NewTimer(time.Until(r.tracker.deadline) + settle)
	defer deadline.Stop()
	// The first pass reads the kernel's table (the FIB starts without a
	// view of it): the first check is due a period after it.
	lastDump := time.Now()
	for {
		dump := false
		select {
		case <-ctx.Done():
			return
		case <-s.kickCh:
			// Let a burst of events land: one pass, one batch of
			// route changes.
			select {
			case <-ctx.Done():
				return
			case <-time.After(settleFor(time.Since(r.lastChange))):
			}
			select {
			case <-s.kickCh:
			default:
			}
		case now := <-tick.C:
			// Put back what someone else changed.
			dump = now.Sub(lastDump) >= max(resync, dumpSpacing*r.fib.lastDump) &&
				(now.Sub(r.lastChange) >= dumpQuiet || now.Sub(lastDump) >= maxDumpDelay)
			if r.gracefulRestart {
				if err := r.marker.touch(); err != nil {
					s.log.Warn("bgp: refresh restart marker", "err", err)
				}
			}
			if r.trim.due(now) {
				s.releaseMemory()
			}
		case <-deadline.C:
		}
		if dump {
			lastDump = time.Now()
		}
		if err := s.reconcile(ctx, r, dump); err != nil {
			s.reconcileErrors.Add(1)
			s.log.Warn("bgp: FIB reconcile", "err", err)
		}
	}
}

// settleFor is how long to let events land before a pass, given how
// long ago a pass last changed the FIB (see settle).
func settleFor(sinceChange time.Duration) time.Duration {
	if sinceChange >= 0 && sinceChange < settle {
		return max(0, bulkSpacing-sinceChange)
	}
	return settle
}

// reconcile makes the FIB follow the RIB: every prefix whose best paths
// (the multipath set) come from peers is installed with one next hop per
// path (ECMP). A peer that has more accepted paths than its
// import.max-prefixes is reset and its paths are not installed. Routes the
// RIB does not hold are deleted, except, until the RIB is synced, routes
// this process did not install (left by a previous process).
//
// The RIB is the reconciler's copy (ribState), kept by GoBGP's events: a
// pass after events touches only the prefixes whose multipath set
// changed. A full pass compares every prefix with what we installed:
// asked for (kick), after a resync, when the excluded peers change, and
// when the sync completes while the kernel holds routes of an earlier
// process. With dump the pass first reads the kernel's table and
// takes up the prefixes where it differs from what we installed.
func (s *Speaker) reconcile(ctx context.Context, r *run, dump bool) error {
	start := time.Now()
	resynced := false
	if s.resyncRIB.Swap(false) {
		err := r.rib.resync(func() ([]ribPath, error) {
			return readLearned(ctx, r.srv.BgpServer, true, int(r.trim.routes.Load()))
		})
		if err != nil {
			s.resyncRIB.Store(true) // the next pass tries again
			return fmt.Errorf("read the RIB: %w", err)
		}
		resynced = true
	}
	dirty, counts := r.rib.take()
	excluded := r.excluded
	if counts != nil {
		var over []netip.Addr
		over, excluded = r.tracker.count(counts)
		for _, addr := range over {
			s.limitExceeded(ctx, r, addr)
		}
	}
	synced := r.tracker.isSynced(time.Now())
	full := s.fullPass.Swap(false) || resynced || !maps.Equal(excluded, r.excluded) || (r.synced && !synced)
	r.excluded = excluded
	var errs []error
	if dump || !r.fib.haveValid {
		drifted, err := r.fib.refresh(synced)
		if err != nil {
			// What was taken from the copy is not lost: the next pass
			// compares every prefix.
			s.fullPass.Store(true)
			return err
		}
		for _, p := range drifted {
			dirty = append(dirty, keyOf(p))
		}
	}
	// When the sync completes, only routes left by an earlier process can
	// differ from what the passes made: the full comparison (0.1 s at
	// 100,000 routes, at the very end of a bulk load) is needed only if
	// the kernel holds any.
	full = full || (synced && !r.synced && r.fib.hasInherited())
	r.synced = synced
	read := time.Since(start)
	view := fibView{s: r.rib, excluded: excluded, ifindex: r.peerIfindex()}
	var changes []fibChange
	if full {
		changes = view.diff(r.fib)
	} else if len(dirty) > 0 {
		changes = view.changes(dirty)
	}
	changed, err := r.fib.update(changes, synced)
	if err != nil {
		errs = append(errs, err)
	}
	if changed > 0 {
		r.lastChange = time.Now()
	}
	if changed > 0 || resynced {
		s.log.Debug("bgp: FIB reconciled", "full", full, "dump", dump, "dirty", len(dirty), "changed", changed,
			"resync", resynced, "read", read.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
	}
	// A bulk change of the FIB (a peer's full table arriving or going)
	// leaves garbage to hand back to the OS once things are quiet.
	r.trim.bulk(changed, time.Now())
	return errors.Join(errs...)
}

// peerIfindex returns a lookup of the interface of a link-local next hop
// by the peer that sent it, cached for one pass.
func (r *run) peerIfindex() func(netip.Addr) int {
	ifindexes := map[netip.Addr]int{}
	return func(peer netip.Addr) int {
		if i, ok := ifindexes[peer]; ok {
			return i
		}
		i := 0
		if peer.Zone() != "" {
			// A link-local session: its interface.
			if ifi, err := net.InterfaceByName(peer.Zone()); err == nil {
				i = ifi.Index
			}
		} else {
			i = r.fib.linkFor(nexthop{addr: peer})
		}
		ifindexes[peer] = i
		return i
	}
}
