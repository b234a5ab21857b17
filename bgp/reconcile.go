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
	// resync is the period of a full pass even without events: it puts
	// back routes the kernel dropped (an interface went down and up) and
	// refreshes the restart marker.
	resync = 5 * time.Second
)

// kick asks the reconciler for a pass; it never blocks.
func (s *Speaker) kick() {
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
			// while routes keep coming, spend at most half the time in
			// passes (a pass over 100,000 routes takes a good part of a
			// second that GoBGP needs to take them in).
			select {
			case <-ctx.Done():
				return
			case <-time.After(max(settle, took)):
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
func (s *Speaker) reconcile(ctx context.Context, r *run, dump bool) error {
	paths, err := readLearned(ctx, r.srv.BgpServer, true)
	if err != nil {
		return err
	}
	accepted := map[netip.Addr]famCounts{}
	for _, p := range paths {
		if p.local {
			continue
		}
		if accepted[p.peer] == nil {
			accepted[p.peer] = famCounts{}
		}
		accepted[p.peer][familyOf(p.prefix.Addr())]++
	}
	over, excluded := r.tracker.count(accepted)
	for _, addr := range over {
		s.limitExceeded(ctx, r, addr)
	}
	ifindexes := map[netip.Addr]int{} // per pass: many paths, few peers
	ifindex := func(peer netip.Addr) int {
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
	want := fibRoutes{}
	for _, p := range paths {
		if p.local || !p.best || excluded[p.peer] {
			continue
		}
		if nh, ok := p.gatewayOf(ifindex); ok {
			want[p.prefix] = append(want[p.prefix], nh)
		}
	}
	for p, nhs := range want {
		want[p] = normalize(nhs)
	}
	synced := r.tracker.isSynced(time.Now())
	changed, err := r.fib.sync(want, synced, dump)
	// A bulk change of the FIB (a peer's full table arriving or going)
	// leaves garbage to hand back to the OS once things are quiet.
	r.trim.bulk(changed, time.Now())
	r.setInstalled(want)
	return err
}
