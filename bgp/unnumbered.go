package bgp

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/aird-net/aird/bgp/linklocal"
)

// An unnumbered peer (interface = "eth1") has no configured address: a
// linklocal.Discoverer on the interface finds the switch's link-local
// address (and, with its Router Advertisements, tells the switch ours).
// When the address appears the peer becomes the GoBGP neighbour
// fe80::x%eth1; when it changes the neighbour is replaced; when it goes
// (link down) the neighbour is deleted. Until then the peer is configured
// but not in GoBGP.

// watchRetry is how often discovery is tried again on an interface where
// it cannot start (missing, or without a link-local address yet).
const watchRetry = 5 * time.Second

// ifaceWatch runs neighbour discovery on one interface while the speaker
// runs.
type ifaceWatch struct {
	iface  string
	cancel context.CancelFunc
	done   chan struct{}
}

// resolvePeers gives unnumbered peers the address discovered on their
// interface (or none). peers is modified and returned.
func resolvePeers(peers []peer, discovered map[string]netip.Addr) []peer {
	for i := range peers {
		if iface := peers[i].session.iface; iface != "" {
			peers[i].session.address = discovered[iface]
		}
	}
	return peers
}

// syncWatches runs discovery on the interfaces of the unnumbered peers and
// on no other. Called with s.mu held.
func (s *Speaker) syncWatches(r *run, peers []peer) {
	want := map[string]bool{}
	for _, p := range peers {
		if p.session.iface != "" {
			want[p.session.iface] = true
		}
	}
	for iface, w := range r.watches {
		if !want[iface] {
			w.cancel()
			delete(r.watches, iface)
			delete(r.discovered, iface)
		}
	}
	for iface := range want {
		if r.watches[iface] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		w := &ifaceWatch{iface: iface, cancel: cancel, done: make(chan struct{})}
		r.watches[iface] = w
		go s.watch(ctx, r, w)
	}
}

// stopWatches ends discovery; it does not wait (the watchers take s.mu).
func (r *run) stopWatches() []*ifaceWatch {
	var ws []*ifaceWatch
	for iface, w := range r.watches {
		w.cancel()
		ws = append(ws, w)
		delete(r.watches, iface)
	}
	return ws
}

// watch runs a Discoverer on the interface until ctx ends, starting it
// again when it cannot start (the interface does not exist yet or has no
// link-local address) or the interface was replaced.
func (s *Speaker) watch(ctx context.Context, r *run, w *ifaceWatch) {
	defer close(w.done)
	failing := false
	for ctx.Err() == nil {
		d, err := linklocal.Start(ctx, linklocal.Options{
			Interface: w.iface,
			Interval:  s.o.RAInterval,
			Expiry:    -1, // switches that send no RAs must not be forgotten
			Logger:    s.log,
		})
		if err != nil {
			if !failing {
				s.log.Warn("bgp: unnumbered peer: cannot watch the interface yet; retrying", "interface", w.iface, "every", watchRetry, "err", err)
			}
			failing = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(watchRetry):
			}
			continue
		}
		if failing {
			s.log.Info("bgp: unnumbered peer: watching the interface", "interface", w.iface)
		}
		failing = false
		s.follow(ctx, r, w, d)
		if err := d.Close(); err != nil {
			s.log.Debug("bgp: unnumbered peer discovery close", "interface", w.iface, "err", err)
		}
	}
}

// follow hands the discovered addresses to the speaker until ctx ends or
// the peer is lost because the interface is gone or was replaced.
func (s *Speaker) follow(ctx context.Context, r *run, w *ifaceWatch, d *linklocal.Discoverer) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-d.Updates():
			s.onDiscovered(r, w, a)
			if !a.IsValid() {
				if ifi, err := net.InterfaceByName(w.iface); err != nil || ifi.Index != d.Index() {
					return
				}
			}
		}
	}
}

// onDiscovered moves the unnumbered peer on w's interface to addr (none
// when invalid): its GoBGP neighbour is added, replaced or deleted.
func (s *Speaker) onDiscovered(r *run, w *ifaceWatch, addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != r || r.watches[w.iface] != w || r.discovered[w.iface] == addr {
		return
	}
	if addr.IsValid() {
		s.log.Info("bgp: unnumbered peer found", "interface", w.iface, "address", addr)
		r.discovered[w.iface] = addr
	} else {
		s.log.Info("bgp: unnumbered peer lost", "interface", w.iface)
		delete(r.discovered, w.iface)
	}
	peers := resolvePeers(slices.Clone(s.peers), r.discovered)
	pols, err := buildPolicies(s.cfg, s.node, peers, s.policyState())
	if err != nil {
		s.log.Error("bgp: unnumbered peer: policies", "interface", w.iface, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	changed, err := s.applyRunning(ctx, peers, pols)
	if changed {
		s.peers, s.policies = peers, pols
		s.resync()
	}
	if err != nil {
		s.log.Warn("bgp: unnumbered peer", "interface", w.iface, "err", err)
	}
}
