package bgp

import (
	"net/netip"
	"sync"
	"time"
)

// peerRuntime is what the speaker learns about a peer while it runs.
type peerRuntime struct {
	name       string
	limit      int  // import.max-prefixes
	external   bool // asn = "external": our own AS is refused
	families   families
	up         bool // Established
	negotiated families
	eor        families // End-of-RIB received since Established
	accepted   int      // paths in the RIB from this peer (after import)
	overLimit  bool     // reset for exceeding limit, until up again
}

// tracker follows sessions and End-of-RIB markers, fed by GoBGP's events
// and read by the FIB reconciler. Its lock is never held while calling
// GoBGP.
type tracker struct {
	mu    sync.Mutex
	peers map[netip.Addr]*peerRuntime
	// The FIB may lose routes that the RIB does not hold (left by an
	// earlier process) only once synced: every peer configured at
	// Start has been up and sent End-of-RIB for each negotiated family,
	// or the deadline (the graceful restart time) passed.
	deadline time.Time
	synced   bool
}

func newTracker(peers []peer, deadline time.Time) *tracker {
	t := &tracker{peers: map[netip.Addr]*peerRuntime{}, deadline: deadline}
	t.setPeers(peers)
	return t
}

// setPeers follows a new peer list, keeping what is known of old peers.
func (t *tracker) setPeers(peers []peer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := make(map[netip.Addr]*peerRuntime, len(peers))
	for _, p := range peers {
		rt := t.peers[p.session.address]
		if rt == nil {
			rt = &peerRuntime{}
		}
		rt.name = p.name
		rt.limit = p.cfg.Import.MaxPrefixes
		rt.external = p.session.external
		rt.families = p.session.families
		next[p.session.address] = rt
	}
	t.peers = next
}

// reset forgets a peer's session (it is being deleted and added again).
func (t *tracker) reset(addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt := t.peers[addr]; rt != nil {
		*rt = peerRuntime{name: rt.name, limit: rt.limit, external: rt.external, families: rt.families}
	}
}

// state records a session state change.
func (t *tracker) state(addr netip.Addr, up bool, negotiated families) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rt := t.peers[addr]
	if rt == nil {
		return
	}
	if up && !rt.up {
		rt.eor, rt.overLimit = 0, false
		rt.negotiated = negotiated & rt.families
	}
	rt.up = up
}

// endOfRIB records an End-of-RIB marker.
func (t *tracker) endOfRIB(addr netip.Addr, fam families) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt := t.peers[addr]; rt != nil {
		rt.eor |= fam
	}
}

// isSynced reports (and latches) whether stale routes may be deleted.
func (t *tracker) isSynced(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.synced {
		return true
	}
	if !now.Before(t.deadline) {
		t.synced = true
		return true
	}
	for _, rt := range t.peers {
		if !rt.up || rt.eor&rt.negotiated != rt.negotiated {
			return false
		}
	}
	t.synced = true
	return true
}

// count records the accepted path counts and returns the peers that are
// over their limit and were not reset for it yet (they are marked).
func (t *tracker) count(accepted map[netip.Addr]int) (over []netip.Addr, excluded map[netip.Addr]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	excluded = map[netip.Addr]bool{}
	for addr, rt := range t.peers {
		rt.accepted = accepted[addr]
		if rt.limit > 0 && rt.accepted > rt.limit {
			excluded[addr] = true
			if !rt.overLimit {
				rt.overLimit = true
				over = append(over, addr)
			}
		}
	}
	return over, excluded
}

// snapshot copies a peer's runtime.
func (t *tracker) snapshot(addr netip.Addr) (peerRuntime, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rt := t.peers[addr]
	if rt == nil {
		return peerRuntime{}, false
	}
	return *rt, true
}
