package bgp

import (
	"maps"
	"net/netip"
	"sync"
	"time"
)

// famCounts counts paths per family.
type famCounts map[families]int

func (c famCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// peerRuntime is what the speaker learns about a peer while it runs.
type peerRuntime struct {
	key        string
	name       string
	address    netip.Addr // invalid for an unnumbered peer not found yet
	limit      int        // import.max-prefixes
	external   bool       // asn = "external": our own AS is refused
	families   families
	up         bool // Established
	negotiated families
	eor        families  // End-of-RIB received since Established
	accepted   int       // paths in the RIB from this peer (after import)
	acceptedBy famCounts // the same, per family
	overLimit  bool      // reset for exceeding limit, until up again
	changed    time.Time // when up last changed
	flaps      uint64    // Established -> down transitions
	lastError  string    // why the session last went down
}

// tracker follows sessions and End-of-RIB markers, fed by GoBGP's events
// and read by the FIB reconciler and the metrics. Peers are known by key
// (an unnumbered peer is tracked, and counts for the sync, before it has
// an address); GoBGP's events name addresses. Its lock is never held
// while calling GoBGP.
type tracker struct {
	mu     sync.Mutex
	peers  map[string]*peerRuntime
	byAddr map[netip.Addr]*peerRuntime
	// The FIB may lose routes that the RIB does not hold (left by an
	// earlier process) only once synced: every peer configured at
	// Start has been up and sent End-of-RIB for each negotiated family,
	// or the deadline (the graceful restart time) passed.
	deadline time.Time
	synced   bool
}

func newTracker(peers []peer, deadline time.Time) *tracker {
	t := &tracker{peers: map[string]*peerRuntime{}, deadline: deadline}
	t.setPeers(peers)
	return t
}

// setPeers follows a new peer list, keeping what is known of old peers.
// A peer whose address changed starts afresh (its session is new), keeping
// its flap count; an established session that ends so counts as a flap
// (GoBGP's event for it names an address no longer tracked).
func (t *tracker) setPeers(peers []peer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := make(map[string]*peerRuntime, len(peers))
	t.byAddr = make(map[netip.Addr]*peerRuntime, len(peers))
	for _, p := range peers {
		rt := t.peers[p.key]
		switch {
		case rt == nil:
			rt = &peerRuntime{key: p.key}
		case rt.address != p.session.address:
			*rt = peerRuntime{key: p.key, flaps: rt.flaps + flap(rt.up)}
		}
		rt.name = p.name
		rt.address = p.session.address
		rt.limit = p.cfg.Import.MaxPrefixes
		rt.external = p.session.external
		rt.families = p.session.families
		next[p.key] = rt
		if rt.address.IsValid() {
			t.byAddr[rt.address] = rt
		}
	}
	t.peers = next
}

// reset forgets a peer's session (it is being deleted and added again).
func (t *tracker) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt := t.peers[key]; rt != nil {
		*rt = peerRuntime{key: rt.key, name: rt.name, address: rt.address, limit: rt.limit,
			external: rt.external, families: rt.families, flaps: rt.flaps + flap(rt.up), lastError: rt.lastError}
	}
}

func flap(up bool) uint64 {
	if up {
		return 1
	}
	return 0
}

// down records why the session of the peer at addr went down.
func (t *tracker) down(addr netip.Addr, why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt := t.byAddr[addr]; rt != nil {
		rt.lastError = why
	}
}

// state records a session state change of the peer at addr.
func (t *tracker) state(addr netip.Addr, up bool, negotiated families, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rt := t.byAddr[addr]
	if rt == nil {
		return
	}
	if up && !rt.up {
		rt.eor, rt.overLimit = 0, false
		rt.negotiated = negotiated & rt.families
	}
	if !up && rt.up {
		rt.flaps++
	}
	if up != rt.up {
		rt.changed = now
	}
	rt.up = up
}

// endOfRIB records an End-of-RIB marker.
func (t *tracker) endOfRIB(addr netip.Addr, fam families) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt := t.byAddr[addr]; rt != nil {
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
func (t *tracker) count(accepted map[netip.Addr]famCounts) (over []netip.Addr, excluded map[netip.Addr]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	excluded = map[netip.Addr]bool{}
	for _, rt := range t.peers {
		rt.acceptedBy = nil
		rt.accepted = 0
		if !rt.address.IsValid() {
			continue
		}
		rt.acceptedBy = accepted[rt.address]
		rt.accepted = rt.acceptedBy.total()
		if rt.limit > 0 && rt.accepted > rt.limit {
			excluded[rt.address] = true
			if !rt.overLimit {
				rt.overLimit = true
				over = append(over, rt.address)
			}
		}
	}
	return over, excluded
}

// snapshot copies the runtime of the peer at addr.
func (t *tracker) snapshot(addr netip.Addr) (peerRuntime, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return copyRuntime(t.byAddr[addr])
}

// byKey copies the runtime of the peer with this key.
func (t *tracker) byKey(key string) (peerRuntime, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return copyRuntime(t.peers[key])
}

func copyRuntime(rt *peerRuntime) (peerRuntime, bool) {
	if rt == nil {
		return peerRuntime{}, false
	}
	c := *rt
	c.acceptedBy = maps.Clone(rt.acceptedBy)
	return c, true
}
