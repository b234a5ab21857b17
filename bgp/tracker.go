package bgp

import (
	"fmt"
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
	session    session
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
	limitHits  int       // consecutive max-prefixes hold-downs
	limitAt    time.Time // the last one
	retryAt    time.Time // when the last one ends
	changed    time.Time // when up last changed
	flaps      uint64    // Established -> down transitions
	lastError  string    // why the session last went down, for an operator
	// lastSent and lastReceived are the last NOTIFICATIONs.
	lastSent, lastReceived *Notification
	everUp                 bool // established at least once
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
			rt = &peerRuntime{key: p.key, changed: time.Now()}
		case rt.address != p.session.address:
			*rt = peerRuntime{key: p.key, flaps: rt.flaps + flap(rt.up), changed: time.Now()}
		}
		rt.name = p.name
		rt.session = p.session
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
		*rt = peerRuntime{key: rt.key, name: rt.name, session: rt.session, address: rt.address, limit: rt.limit,
			external: rt.external, families: rt.families, flaps: rt.flaps + flap(rt.up), lastError: rt.lastError,
			limitHits: rt.limitHits, limitAt: rt.limitAt, lastSent: rt.lastSent, lastReceived: rt.lastReceived,
			changed: time.Now()}
	}
}

func flap(up bool) uint64 {
	if up {
		return 1
	}
	return 0
}

// recentNotification is how long a NOTIFICATION the speaker itself sent
// explains the session going down right after.
const recentNotification = 5 * time.Second

// down records why the session of the peer at addr went down: GoBGP's
// disconnect message, decoded.
func (t *tracker) down(addr netip.Addr, msg string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rt := t.byAddr[addr]
	if rt == nil {
		return
	}
	n, sent := parseDisconnect(msg, now)
	switch {
	case n != nil && sent:
		rt.lastSent = n
	case n != nil:
		rt.lastReceived = n
	case rt.lastSent != nil && now.Sub(rt.lastSent.At) < recentNotification:
		// GoBGP reports a session it ended for us (max-prefixes) as
		// lost: the NOTIFICATION we sent is the reason.
		n, sent = rt.lastSent, true
	}
	if now.Before(rt.retryAt) {
		return // held down for max-prefixes: lastError says so
	}
	switch {
	case n != nil && sent:
		rt.lastError = "NOTIFICATION sent: " + n.Text
	case n != nil:
		rt.lastError = "NOTIFICATION received: " + n.Text
	default:
		rt.lastError = disconnectText(msg)
	}
}

// sent records a NOTIFICATION the speaker made GoBGP send.
func (t *tracker) sent(addr netip.Addr, n *Notification) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt := t.byAddr[addr]; rt != nil {
		rt.lastSent = n
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
		rt.eor, rt.overLimit, rt.everUp = 0, false, true
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

// limitHit records that the peer at addr went over its limit at now and
// returns its runtime and the hold-down to apply (see maxPrefixBackoff).
func (t *tracker) limitHit(addr netip.Addr, now time.Time, first time.Duration) (peerRuntime, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rt := t.byAddr[addr]
	if rt == nil {
		return peerRuntime{}, first
	}
	if now.Sub(rt.limitAt) > maxPrefixForget {
		rt.limitHits = 0
	}
	rt.limitHits++
	rt.limitAt = now
	d := maxPrefixBackoff(first, rt.limitHits)
	rt.retryAt = now.Add(d)
	rt.lastError = fmt.Sprintf("maximum prefixes exceeded: %d accepted, limit %d; held down until %s (%s)",
		rt.accepted, rt.limit, rt.retryAt.Format(time.TimeOnly), d)
	c, _ := copyRuntime(rt)
	return c, d
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
	if rt.lastSent != nil {
		n := *rt.lastSent
		c.lastSent = &n
	}
	if rt.lastReceived != nil {
		n := *rt.lastReceived
		c.lastReceived = &n
	}
	return c, true
}
