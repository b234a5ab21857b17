package bgp

import (
	"bytes"
	"net/netip"
	"slices"
	"sync"

	"github.com/aird-net/aird/internal/config"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// ribState is the speaker's copy of what the FIB and the prefix limits
// need from GoBGP's global RIB, kept from GoBGP's events instead of read
// back after them (reading 100,000 paths through ListPath took seconds per
// pass on a loaded machine and made most of a bulk load's garbage):
//
//   - the multipath set (the best path and its ECMP equals) of every
//     learned prefix, from best-path events: for each destination that
//     changed, GoBGP reports the paths that entered the set or changed in
//     it and those that left it (its multipath deltas), after its import
//     policy and best-path selection;
//   - the prefixes each peer has in the global RIB, for
//     import.max-prefixes: the paths of the UPDATEs a peer sent, each
//     kept when its prefix matches one of the peer's import.prefixes (the
//     import policy is made of exactly these, buildPolicies), and GoBGP's
//     own Adj-RIB-In withdrawals (session down, graceful-restart timer,
//     neighbour deleted).
//
// Two changes reach neither stream: the soft reset in that follows a
// policy change, which re-evaluates what the peers sent, and the
// End-of-RIB after a peer's graceful restart, at which GoBGP drops the
// stale paths that were not sent again. After those the reconciler reads
// GoBGP's RIB once (resync) and the copy is replaced. The lock is held
// across the read, so events wait and are applied after it; each sets or
// clears one peer's path for one prefix, so applying again what the read
// already holds changes nothing.
type ribState struct {
	mu sync.Mutex
	// paths is the multipath set of each learned prefix, interned in
	// hops (see interner).
	paths map[prefixKey]setID
	hops  *interner[hop]
	set   []hop // scratch
	// peers holds the prefixes each peer has in the global RIB.
	peers   map[netip.Addr]*peerPrefixes
	filters map[netip.Addr]importFilter
	// dirty are the prefixes whose multipath set changed since the last
	// pass, in the order of the events, a prefix more than once if it
	// changed more than once (take sorts them and drops the repeats; an
	// append per event costs less than a map insert, the watcher's
	// share of a 100,000-route withdrawal). deduped is how many were left
	// after the last time repeats were dropped (see markDirty); spare is
	// the array take handed out the time before, to reuse. counted is set
	// when the per-peer counts changed.
	dirty   []prefixKey
	deduped int
	spare   []prefixKey
	counted bool
	// stale are the peers whose session went down while they had paths:
	// the End-of-RIB after it may drop paths without an event.
	stale map[netip.Addr]bool
}

// hop is one path of a multipath set, as the FIB needs it.
type hop struct {
	peer    netip.Addr
	id      uint32     // the path identifier (ADD-PATH), 0 without
	nexthop netip.Addr // the global next hop, or the only one
	ll      netip.Addr // the link-local next hop of an IPv6 MP_REACH
}

// peerPrefixes are a peer's prefixes in the global RIB.
type peerPrefixes struct {
	m    map[prefixKey]struct{}
	byFm [2]int // per family: [0] IPv4, [1] IPv6
}

// importFilter is what a peer's import policy accepts (importStatements).
type importFilter struct {
	families families
	prefixes []config.PrefixFilter
}

func (f importFilter) accepts(p netip.Prefix) bool {
	if !f.families.has(familyOf(p.Addr())) {
		return false
	}
	for _, pf := range f.prefixes {
		if pf.Matches(p) {
			return true
		}
	}
	return false
}

func newRIBState() *ribState {
	return &ribState{
		paths:   map[prefixKey]setID{},
		hops:    newInterner(hopsKey),
		peers:   map[netip.Addr]*peerPrefixes{},
		filters: map[netip.Addr]importFilter{},
		stale:   map[netip.Addr]bool{},
	}
}

// setFilters records the import filters of the peers that have an
// address. Call it before GoBGP gets the policies built from peers.
func (s *ribState) setFilters(peers []peer) {
	f := make(map[netip.Addr]importFilter, len(peers))
	for _, p := range peers {
		if p.resolved() {
			f[p.session.address] = importFilter{families: p.session.families, prefixes: p.cfg.Import.Prefixes}
		}
	}
	s.mu.Lock()
	s.filters = f
	s.mu.Unlock()
}

// onBest applies a best-path event: the paths that entered or changed in
// the multipath set of their prefix, and those that left it (withdrawals).
// Without a change to the set, GoBGP sends the set as it is, which
// changes nothing here. It reports whether a learned prefix changed.
func (s *ribState) onBest(paths []*apiutil.Path) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, p := range paths {
		if !p.PeerAddress.IsValid() {
			continue // ours: never in the FIB
		}
		prefix, ok := nlriPrefix(p.Nlri)
		if !ok {
			continue
		}
		k := keyOf(prefix)
		h := hop{peer: p.PeerAddress.Unmap(), id: p.RemoteID}
		if !p.Withdrawal {
			h = hopOf(p) // a withdrawal is known by its peer and id
		}
		old := s.paths[k]
		set := append(s.set[:0], s.hops.get(old)...)
		i := slices.IndexFunc(set, func(x hop) bool { return x.peer == h.peer && x.id == h.id })
		switch {
		case p.Withdrawal && i < 0:
			continue
		case p.Withdrawal:
			set = slices.Delete(set, i, i+1)
		case i >= 0:
			if set[i] == h {
				continue
			}
			set[i] = h
		default:
			set = append(set, h)
		}
		s.set = set
		if id := s.hops.add(set); id == 0 {
			delete(s.paths, k)
		} else {
			s.paths[k] = id
		}
		s.hops.release(old)
		s.markDirty(k)
		changed = true
	}
	return changed
}

// dirtyFloor is how many dirty entries may pile up before repeats are
// dropped, whatever the last count without repeats was.
const dirtyFloor = 4096

// markDirty records that k's multipath set changed. A prefix that keeps
// changing between two passes (a flapping peer, a stalled reconciler) must
// not grow the list without bound: once it holds twice as many entries as
// it had without repeats the last time (and at least dirtyFloor), the
// repeats go.
func (s *ribState) markDirty(k prefixKey) {
	s.dirty = append(s.dirty, k)
	if len(s.dirty) >= max(dirtyFloor, 2*s.deduped) {
		s.dirty = sortKeys(s.dirty)
		s.deduped = len(s.dirty)
	}
}

// sortKeys sorts keys in the order the FIB sends changes (sortChanges:
// IPv4 first, then address, then prefix length) and drops repeats.
func sortKeys(keys []prefixKey) []prefixKey {
	slices.SortFunc(keys, comparePrefixKeys)
	return slices.Compact(keys)
}

func comparePrefixKeys(a, b prefixKey) int {
	if a.is4 != b.is4 {
		if a.is4 {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(a.addr[:], b.addr[:]); c != 0 {
		return c
	}
	return int(a.bits) - int(b.bits)
}

// hopOf flattens a path for the FIB.
func hopOf(p *apiutil.Path) hop {
	h := hop{peer: p.PeerAddress.Unmap(), id: p.RemoteID}
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *gobgp.PathAttributeNextHop:
			h.nexthop = a.Value.Unmap()
		case *gobgp.PathAttributeMpReachNLRI:
			h.nexthop = a.Nexthop.Unmap()
			h.ll = a.LinkLocalNexthop
		}
	}
	return h
}

// onUpdate applies paths received from peers (an UPDATE, before the
// import policy) or dropped by GoBGP from a peer's Adj-RIB-In: a path the
// peer's import filter accepts is in the global RIB, anything else (a
// withdrawal, a path the policy rejects, which replaces an accepted one)
// is not. It reports whether a count changed.
func (s *ribState) onUpdate(paths []*apiutil.Path) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, p := range paths {
		if !p.PeerAddress.IsValid() {
			continue
		}
		prefix, ok := nlriPrefix(p.Nlri)
		if !ok {
			continue
		}
		peer := p.PeerAddress.Unmap()
		if !p.Withdrawal && s.filters[peer].accepts(prefix) {
			changed = s.addAccepted(peer, prefix) || changed
		} else {
			changed = s.removeAccepted(peer, prefix) || changed
		}
	}
	s.counted = s.counted || changed
	return changed
}

func (s *ribState) addAccepted(peer netip.Addr, p netip.Prefix) bool {
	return s.prefixesOf(peer).add(p)
}

func (s *ribState) removeAccepted(peer netip.Addr, p netip.Prefix) bool {
	pp := s.peers[peer]
	if pp == nil || !pp.remove(p) {
		return false
	}
	if len(pp.m) == 0 {
		delete(s.peers, peer)
	}
	return true
}

// prefixesOf returns peer's prefixes, adding an empty set if it has none.
func (s *ribState) prefixesOf(peer netip.Addr) *peerPrefixes {
	pp := s.peers[peer]
	if pp == nil {
		pp = &peerPrefixes{m: map[prefixKey]struct{}{}}
		s.peers[peer] = pp
	}
	return pp
}

// add adds p; it reports whether p was new. (One map operation: the
// length tells.)
func (pp *peerPrefixes) add(p netip.Prefix) bool {
	n := len(pp.m)
	pp.m[keyOf(p)] = struct{}{}
	if len(pp.m) == n {
		return false
	}
	pp.byFm[famIndex(p)]++
	return true
}

// remove removes p; it reports whether p was there.
func (pp *peerPrefixes) remove(p netip.Prefix) bool {
	n := len(pp.m)
	delete(pp.m, keyOf(p))
	if len(pp.m) == n {
		return false
	}
	pp.byFm[famIndex(p)]--
	return true
}

func famIndex(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1
}

// sessionDown records that a peer's session ended: if it had paths, the
// End-of-RIB of its next session may drop some without an event.
func (s *ribState) sessionDown(peer netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers[peer] != nil {
		s.stale[peer] = true
	}
}

// endOfRIB reports whether an End-of-RIB from peer calls for a resync
// (see sessionDown); done says it was the peer's last family, after which
// GoBGP has dropped what it was going to.
func (s *ribState) endOfRIB(peer netip.Addr, done bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stale[peer] {
		return false
	}
	if done {
		delete(s.stale, peer)
	}
	return true
}

// resync replaces the copy with what read returns (GoBGP's learned paths),
// holding the lock across the read. The pass that follows must compare
// every prefix (the dirty set is cleared).
func (s *ribState) resync(read func() ([]ribPath, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	paths, err := read()
	if err != nil {
		return err
	}
	sets := map[prefixKey][]hop{}
	s.peers = map[netip.Addr]*peerPrefixes{}
	for _, p := range paths {
		if p.local {
			continue
		}
		s.addAccepted(p.peer, p.prefix)
		if p.best {
			k := keyOf(p.prefix)
			sets[k] = append(sets[k], hop{peer: p.peer, id: p.id, nexthop: p.nexthop, ll: p.llNexthop})
		}
	}
	s.paths = make(map[prefixKey]setID, len(sets))
	s.hops = newInterner(hopsKey)
	for k, set := range sets {
		s.paths[k] = s.hops.add(set)
	}
	s.dirty, s.deduped = s.dirty[:0], 0
	s.counted = true
	return nil
}

// take returns the prefixes whose multipath set changed since the last
// call, sorted as the FIB sends them (sortKeys) and each once, and the
// per-peer counts when they changed (nil otherwise). The slice is valid
// until the next call.
func (s *ribState) take() ([]prefixKey, map[netip.Addr]famCounts) {
	s.mu.Lock()
	dirty := s.dirty
	// The events append to the array handed out last time: the caller is
	// done with it.
	s.dirty, s.spare, s.deduped = s.spare[:0], dirty, 0
	var counts map[netip.Addr]famCounts
	if s.counted {
		s.counted = false
		counts = make(map[netip.Addr]famCounts, len(s.peers))
		for a, pp := range s.peers {
			c := famCounts{}
			if pp.byFm[0] > 0 {
				c[famIPv4] = pp.byFm[0]
			}
			if pp.byFm[1] > 0 {
				c[famIPv6] = pp.byFm[1]
			}
			counts[a] = c
		}
	}
	s.mu.Unlock()
	return sortKeys(dirty), counts
}

// fibView is the FIB the copy asks for: the next hops of each learned
// prefix's multipath set, leaving out the peers over their limit.
type fibView struct {
	s        *ribState
	excluded map[netip.Addr]bool
	ifindex  func(netip.Addr) int
}

// nexthops returns the FIB route for k (none: no route). Call with s.mu
// held.
func (v fibView) nexthops(k prefixKey) []nexthop {
	return v.nexthopsInto(nil, k)
}

// nexthopsInto is nexthops appending to nhs (a scratch buffer, or the
// routes of other prefixes: only what it appends is sorted).
func (v fibView) nexthopsInto(nhs []nexthop, k prefixKey) []nexthop {
	start := len(nhs)
	for _, h := range v.s.hops.get(v.s.paths[k]) {
		if v.excluded[h.peer] {
			continue
		}
		if nh, ok := gatewayOf(h.nexthop, h.ll, h.peer, v.ifindex); ok {
			nhs = append(nhs, nh)
		}
	}
	if len(nhs)-start > 1 {
		nhs = nhs[:start+len(normalize(nhs[start:]))]
	}
	return nhs
}

// changes returns the FIB routes of the prefixes in keys (their next hops
// share one array).
func (v fibView) changes(keys []prefixKey) []fibChange {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	out := make([]fibChange, len(keys))
	all := make([]nexthop, 0, len(keys))
	for i, k := range keys {
		start := len(all)
		all = v.nexthopsInto(all, k)
		out[i] = fibChange{prefix: k.prefix(), nhs: all[start:len(all):len(all)]}
	}
	return out
}

// diff returns the prefixes where the FIB f holds (or may hold) other
// than the routes the copy asks for: a different route, none, a route the
// copy does not ask for, or the same route left by an earlier process
// (update takes it over). It reads f's view, which only the reconciler
// changes.
func (v fibView) diff(f *fib) []fibChange {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	var out []fibChange
	var buf []nexthop
	for k := range v.s.paths {
		p := k.prefix()
		buf = v.nexthopsInto(buf[:0], k)
		have, ok := f.get(p)
		switch {
		case len(buf) == 0 && !ok:
		case len(buf) == 0:
			out = append(out, fibChange{prefix: p})
		case !ok || !have.mine || !slices.Equal(have.nhs, buf):
			out = append(out, fibChange{prefix: p, nhs: slices.Clone(buf)})
		}
	}
	for k := range f.have {
		if _, ok := v.s.paths[k]; !ok {
			out = append(out, fibChange{prefix: k.prefix()})
		}
	}
	return out
}

// each calls fn for every learned prefix with a route, holding the lock.
func (v fibView) each(fn func(netip.Prefix, []nexthop)) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	for k := range v.s.paths {
		if nhs := v.nexthops(k); len(nhs) > 0 {
			fn(k.prefix(), nhs)
		}
	}
}

// has reports whether p has a route.
func (v fibView) has(p netip.Prefix) bool {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	return len(v.nexthops(keyOf(p))) > 0
}
