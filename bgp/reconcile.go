package bgp

import (
	"context"
	"net"
	"net/netip"
	"time"
)

const (
	// settle batches bursts of RIB events into one FIB pass.
	settle = 100 * time.Millisecond
	// maxPause bounds the wait before a pass that follows a long one.
	maxPause = time.Second
	// resync is the period of a full pass even without events: it puts
	// back routes the kernel dropped (an interface went down and up) and
	// refreshes the restart marker.
	resync = 5 * time.Second
)

// kick asks the reconciler for a full pass; it never blocks (callers may
// hold s.mu).
func (s *Speaker) kick() {
	s.fullPass.Store(true)
	s.signal()
}

// kickPaths asks for a pass over prefixes named by UPDATEs (r's copy of
// the RIB); it never blocks.
func (s *Speaker) kickPaths(r *run, prefixes []netip.Prefix) {
	r.rib.markDirty(prefixes)
	s.signal()
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
	var took time.Duration // the last pass
	for {
		dump := false
		select {
		case <-ctx.Done():
			return
		case <-s.kickCh:
			// Let a burst of events land before reading the RIB, and
			// while routes keep coming, leave GoBGP about as much time
			// to take them in as the last pass took (a pass over
			// 100,000 routes takes seconds on a loaded machine), at most
			// maxPause.
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(max(settle, took), maxPause)):
			}
			select {
			case <-s.kickCh:
			default:
			}
		case now := <-tick.C:
			dump = true // put back what someone else changed
			if r.gracefulRestart {
				if err := r.marker.touch(); err != nil {
					s.log.Warn("bgp: refresh restart marker", "err", err)
				}
			}
			if r.trim.due(now) {
				s.releaseMemory()
			}
		case <-deadline.C:
			dump = true
		}
		start := time.Now()
		if err := s.reconcile(ctx, r, dump); err != nil {
			s.reconcileErrors.Add(1)
			s.log.Warn("bgp: FIB reconcile", "err", err)
		}
		took = time.Since(start)
	}
}

// reconcile makes the FIB follow the RIB: every prefix whose best paths
// (the multipath set) come from peers is installed with one next hop per
// path (ECMP). A peer that has more accepted paths than its
// import.max-prefixes is reset and its paths are not installed. Routes the
// RIB does not hold are deleted, except, until the RIB is synced, routes
// this process did not install (left by a previous process).
//
// A full pass reads every learned path; a pass that follows only UPDATEs
// from peers looks up just the prefixes they named (see ribState).
func (s *Speaker) reconcile(ctx context.Context, r *run, dump bool) error {
	start := time.Now()
	full, dirty := r.rib.take(func(n int) bool { return s.fullPass.Swap(false) || r.rib.cheaperToWalk(n) })
	var paths []ribPath
	var err error
	if full || dump {
		paths, err = readLearned(ctx, r.srv.BgpServer, true, int(r.trim.routes.Load()))
		if err == nil {
			r.rib.reset()
		}
	} else {
		paths, err = lookupLearned(r.srv.BgpServer, dirty)
	}
	if err != nil {
		r.rib.markFull()
		return err
	}
	ifindex := r.peerIfindex()
	r.rib.apply(dirty, paths, ifindex)
	accepted := r.rib.counts()
	over, excluded := r.tracker.count(accepted)
	for _, addr := range over {
		s.limitExceeded(ctx, r, addr)
	}
	want := r.rib.want(excluded)
	synced := r.tracker.isSynced(time.Now())
	read := time.Since(start)
	changed, err := r.fib.sync(want, synced, dump)
	if changed > 0 {
		s.log.Debug("bgp: FIB reconciled", "paths", len(paths), "dirty", len(dirty), "routes", len(want), "changed", changed,
			"read", read.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
	}
	// A bulk change of the FIB (a peer's full table arriving or going)
	// leaves garbage to hand back to the OS once things are quiet.
	r.trim.bulk(changed, time.Now())
	r.setInstalled(want)
	if r.rib.recheck() {
		s.kickPaths(r, nil)
	}
	return err
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
