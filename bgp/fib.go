package bgp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeMetric is the priority of installed routes. A distinct metric keeps
// a BGP route from replacing a route of the same prefix that someone else
// owns (the kernel keys routes by prefix and metric), e.g. a DHCP default.
const routeMetric = 20

// nexthop is one gateway of a FIB route. ifindex is set for link-local
// gateways, which mean nothing without an interface.
type nexthop struct {
	addr    netip.Addr
	ifindex int
}

func (n nexthop) String() string {
	if n.ifindex != 0 {
		return fmt.Sprintf("%s%%%d", n.addr, n.ifindex)
	}
	return n.addr.String()
}

// fibRoutes maps prefixes to their sorted, de-duplicated next hops.
type fibRoutes map[netip.Prefix][]nexthop

func (r fibRoutes) each(fn func(netip.Prefix, []nexthop)) {
	for p, nhs := range r {
		fn(p, nhs)
	}
}

func (r fibRoutes) has(p netip.Prefix) bool {
	_, ok := r[p]
	return ok
}

// fibSource is the FIB a full pass makes the kernel hold: a fibRoutes, or
// the RIB copy's view (fibView) which computes each route as it goes.
type fibSource interface {
	// each calls fn for every prefix with a route (sorted next hops).
	each(fn func(netip.Prefix, []nexthop))
	// has reports whether p has a route.
	has(p netip.Prefix) bool
}

// fibChange is the route of one prefix after a change (no next hops: no
// route).
type fibChange struct {
	prefix netip.Prefix
	nhs    []nexthop
}

// fib installs the speaker's routes in one kernel table, stamped with the
// speaker's protocol number, and removes them. Every route in that table
// with that protocol is the speaker's.
type fib struct {
	h     *netlink.Handle
	table int
	proto netlink.RouteProtocol
	log   *slog.Logger
	w     *routeWriter
	// have is what the kernel holds of ours as far as this process
	// knows: read from the kernel (a dump) first and on the periodic
	// check, else kept up to date with our own changes (a refused
	// change leaves it as it was), so that a pass during a bulk load
	// does not dump 100,000 routes to change a few. Only the reconciler
	// changes it, under mu (Routes and the metrics read it). The next
	// hops are interned in nhs (get and put convert), so that the view
	// of 100,000 routes has no pointers for the garbage collector.
	mu        sync.Mutex
	have      map[prefixKey]haveEntry
	nhs       *interner[nexthop]
	other     []keptRoute
	haveValid bool
	// gen counts the reads of the kernel's table (refresh).
	gen uint32
	// failed are the prefixes whose last change the kernel refused:
	// the next kernel check (refresh) takes them up again.
	failed map[netip.Prefix]struct{}
	// lastDump is how long the last read of the kernel's table took.
	lastDump time.Duration
}

// haveRoute is a route of ours in the kernel: its next hops, the read of
// the kernel's table that last saw it, and whether this process installed
// it (mine). Before the RIB is synced only routes of this process may be
// deleted, so that routes kept from a previous process (graceful restart)
// stay until the peers sent theirs again. kept are the next hops such a
// route had when this process first read it: until the sync completes,
// a change of the prefix adds them to the new next hops instead of
// replacing them (an ECMP route learned from two peers keeps the second
// peer's next hop while only the first has sent its paths again).
type haveRoute struct {
	nhs  []nexthop
	kept []nexthop
	gen  uint32
	mine bool
}

// keptOf returns the next hops kept from an earlier process for a route
// read from the kernel with nhs: those already recorded, or, for a route
// this process has not seen before, all of nhs.
func keptOf(old haveRoute, known bool, nhs []nexthop) []nexthop {
	if known {
		return old.kept
	}
	return nhs
}

// haveEntry is a haveRoute as the view stores it.
type haveEntry struct {
	nhs, kept setID
	gen       uint32
	mine      bool
}

// get returns the view's route for p; its slices are the interner's, not
// to be modified.
func (f *fib) get(p netip.Prefix) (haveRoute, bool) {
	e, ok := f.have[keyOf(p)]
	return f.route(e), ok
}

func (f *fib) route(e haveEntry) haveRoute {
	return haveRoute{nhs: f.nhs.get(e.nhs), kept: f.nhs.get(e.kept), gen: e.gen, mine: e.mine}
}

// put sets the view's route for p.
func (f *fib) put(p netip.Prefix, h haveRoute) {
	k := keyOf(p)
	old := f.have[k]
	f.have[k] = haveEntry{nhs: f.nhs.add(h.nhs), kept: f.nhs.add(h.kept), gen: h.gen, mine: h.mine}
	f.nhs.release(old.nhs)
	f.nhs.release(old.kept)
}

// drop removes p from the view.
func (f *fib) drop(k prefixKey) {
	old, ok := f.have[k]
	if !ok {
		return
	}
	delete(f.have, k)
	f.nhs.release(old.nhs)
	f.nhs.release(old.kept)
}

func newFIB(table, proto int, log *slog.Logger) (*fib, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	w, err := newRouteWriter(table, uint8(proto))
	if err != nil {
		h.Close()
		return nil, err
	}
	return &fib{h: h, w: w, table: table, proto: netlink.RouteProtocol(proto), log: log,
		have: map[prefixKey]haveEntry{}, nhs: newInterner(nexthopsKey),
		failed: map[netip.Prefix]struct{}{}}, nil
}

func (f *fib) close() {
	f.h.Close()
	f.w.close()
}

// list returns the speaker's routes in the kernel, and those with the
// speaker's protocol but another metric (from another version: they are
// deleted once synced).
func (f *fib) list() (fibRoutes, []keptRoute, error) {
	out := fibRoutes{}
	var other []keptRoute
	err := f.w.dump(func(r keptRoute) {
		if r.metric != routeMetric {
			r.nhs = slices.Clone(r.nhs)
			other = append(other, r)
			return
		}
		out[r.prefix] = normalize(append(out[r.prefix], r.nhs...))
	})
	if err != nil {
		return nil, nil, err
	}
	return out, other, nil
}

// maxReportedErrors bounds the route errors one pass returns.
const maxReportedErrors = 10

// sync makes the kernel hold want. Routes of ours that want lacks are
// deleted when full is set, or when this process installed them. With
// dump (or after a failed change) it reads the kernel's table first;
// otherwise it trusts what it installed. Changes go to the kernel in
// batches (routeWriter).
func (f *fib) sync(want fibSource, full, dump bool) (changed int, err error) {
	if dump || !f.haveValid {
		if err := f.load(); err != nil {
			return 0, err
		}
	}
	p := f.newPass()
	want.each(func(prefix netip.Prefix, nhs []nexthop) {
		p.set(prefix, nhs, full)
	})
	for k := range f.have {
		if prefix := k.prefix(); !want.has(prefix) {
			p.set(prefix, nil, full)
		}
	}
	n, err := p.commit()
	if full && len(f.other) > 0 {
		err = errors.Join(err, f.deleteOther())
	}
	return n, err
}

// load reads the kernel's table into the view.
func (f *fib) load() error {
	start := time.Now()
	routes, other, err := f.list()
	f.lastDump = time.Since(start)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	old, oldNhs := f.have, f.nhs
	f.have, f.nhs = make(map[prefixKey]haveEntry, len(routes)), newInterner(nexthopsKey)
	for p, nhs := range routes {
		e, known := old[keyOf(p)]
		h := haveRoute{kept: oldNhs.get(e.kept), mine: e.mine}
		f.put(p, haveRoute{nhs: nhs, kept: keptOf(h, known, nhs), gen: f.gen, mine: e.mine})
	}
	f.other, f.haveValid = other, true
	return nil
}

// refresh reads the kernel's table and returns the prefixes where it
// differs from what this process believed it held (someone else changed
// it, or an interface went down and took routes with it), with those
// whose last change failed: the caller passes them to update. It compares
// route by route as the dump goes, so that a check of 100,000 routes in
// step makes no garbage. With full, the routes of ours with another
// metric are deleted.
func (f *fib) refresh(full bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for p := range f.failed {
		out = append(out, p)
	}
	clear(f.failed)
	if !f.haveValid {
		if err := f.load(); err != nil {
			return nil, err
		}
	} else if err := f.compare(&out); err != nil {
		return nil, err
	}
	var err error
	if full && len(f.other) > 0 {
		err = f.deleteOther()
	}
	return out, err
}

// compare reads the kernel's table into the view, appending to drifted the
// prefixes whose routes were not what the view held.
func (f *fib) compare(drifted *[]netip.Prefix) error {
	start := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	var other []keptRoute
	err := f.w.dump(func(r keptRoute) {
		if r.metric != routeMetric {
			r.nhs = slices.Clone(r.nhs)
			other = append(other, r)
			return
		}
		nhs := normalize(r.nhs)
		k := keyOf(r.prefix)
		e, ok := f.have[k]
		switch {
		case ok && e.gen == f.gen:
			// A second route for the prefix: one with all the next hops
			// replaces both.
			h := f.route(e)
			h.nhs = normalize(append(slices.Clone(h.nhs), nhs...))
			f.put(r.prefix, h)
			*drifted = append(*drifted, r.prefix)
		case ok && slices.Equal(f.nhs.get(e.nhs), nhs):
			e.gen = f.gen
			f.have[k] = e
		default:
			h := f.route(e)
			f.put(r.prefix, haveRoute{nhs: nhs, kept: keptOf(h, ok, nhs), gen: f.gen, mine: e.mine})
			*drifted = append(*drifted, r.prefix)
		}
	})
	f.lastDump = time.Since(start)
	if err != nil {
		f.haveValid = false // read it all again next time
		return err
	}
	for k, e := range f.have {
		if e.gen != f.gen {
			f.drop(k)
			*drifted = append(*drifted, k.prefix())
		}
	}
	f.other = other
	return nil
}

// update applies the routes of changed prefixes, trusting what this
// process installed (refresh reads the kernel); a prefix without next
// hops loses our route when full is set or this process installed it.
// It sorts changes: the kernel works less per route message in address
// order than in the RIB copy's (map) order.
func (f *fib) update(changes []fibChange, full bool) (changed int, err error) {
	if len(changes) == 0 {
		return 0, nil
	}
	if !f.haveValid {
		if err := f.load(); err != nil {
			return 0, err
		}
	}
	changes = sortChanges(changes)
	p := f.newPass()
	for _, c := range changes {
		p.set(c.prefix, c.nhs, full)
	}
	return p.commit()
}

// sortChanges puts changes in address order (IPv4 before IPv6, then
// prefix length) and keeps one change per prefix (the copy's changed
// prefixes and those the kernel check found may overlap; both are read
// from the same copy). Deleting 100,000 IPv6 /64s with ip -batch cost the
// kernel 2.1-2.5 s of system time in address order and 2.7-3.9 s in a
// random one (three runs each, load average 13 falling to 8). The copy's
// changed prefixes come in this order already (ribState.take), which the
// sort finds in one pass.
func sortChanges(changes []fibChange) []fibChange {
	slices.SortFunc(changes, func(a, b fibChange) int {
		if c := a.prefix.Addr().Compare(b.prefix.Addr()); c != 0 {
			return c
		}
		return a.prefix.Bits() - b.prefix.Bits()
	})
	return slices.CompactFunc(changes, func(a, b fibChange) bool { return a.prefix == b.prefix })
}

// hasInherited reports whether the kernel holds routes of ours that this
// process did not install (left by an earlier process).
func (f *fib) hasInherited() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.have {
		if !e.mine {
			return true
		}
	}
	return false
}

// fibPass queues the changes of one pass.
type fibPass struct {
	f     *fib
	links map[netip.Addr]int // next hop -> interface, for this pass
	// kept are the inherited next hops added to the queued routes.
	kept      map[netip.Prefix][]nexthop
	errs      []error
	installed int
	removed   int
}

func (f *fib) newPass() *fibPass {
	return &fibPass{f: f, links: map[netip.Addr]int{}, kept: map[netip.Prefix][]nexthop{}}
}

// set queues what it takes for the kernel to hold nhs for prefix (none:
// no route of ours, deleted only when full is set or we installed it).
// Until full is set, a route left by an earlier process keeps its next
// hops next to the new ones (graceful restart: the peers that have not
// sent their paths again keep theirs until the sync completes).
func (p *fibPass) set(prefix netip.Prefix, nhs []nexthop, full bool) {
	f := p.f
	have, ok := f.get(prefix)
	var kept []nexthop
	if !full && ok && !have.mine && len(nhs) > 0 && len(have.kept) > 0 {
		kept = have.kept
		nhs = normalize(append(slices.Clone(nhs), kept...))
	}
	switch {
	case len(nhs) == 0 && (!ok || (!full && !have.mine)):
	case len(nhs) == 0:
		p.queue(f.w.del(prefix))
		p.removed++
	case ok && slices.Equal(have.nhs, nhs):
		if !have.mine && kept == nil { // the same route, left by an earlier process
			have.mine, have.kept = true, nil
			f.mu.Lock()
			f.put(prefix, have)
			f.mu.Unlock()
		}
	default:
		if kept != nil {
			p.kept[prefix] = kept
		}
		p.queue(f.w.replace(prefix, nhs, f.withLinks(nhs, p.links)))
		p.installed++
	}
}

func (p *fibPass) queue(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// commit sends what is queued and records the results.
func (p *fibPass) commit() (int, error) {
	f := p.f
	p.queue(f.w.flush())
	failed := 0
	f.mu.Lock()
	for _, r := range f.w.take() {
		switch {
		case r.del && (r.err == nil || errors.Is(r.err, unix.ESRCH)):
			f.drop(keyOf(r.prefix))
		case r.err == nil:
			// With inherited next hops added, the route is still
			// the earlier process's until the sync completes.
			kept := p.kept[r.prefix]
			f.put(r.prefix, haveRoute{nhs: r.want, kept: kept, gen: f.gen, mine: kept == nil})
		default:
			f.failed[r.prefix] = struct{}{} // tried again after the next check
			if failed++; failed <= maxReportedErrors {
				what := "install route %s via %v: %w"
				if r.del {
					what = "delete route %s%v: %w"
				}
				p.errs = append(p.errs, fmt.Errorf(what, r.prefix, r.nhs, r.err))
			}
		}
	}
	n := len(f.have)
	f.mu.Unlock()
	if failed > maxReportedErrors {
		p.errs = append(p.errs, fmt.Errorf("and %d more route errors", failed-maxReportedErrors))
	}
	if p.installed+p.removed > 0 {
		f.log.Debug("bgp: FIB pass", "installed", p.installed, "removed", p.removed, "failed", failed, "routes", n)
	}
	return p.installed + p.removed, errors.Join(p.errs...)
}

// deleteOther deletes the routes with our protocol and another metric.
func (f *fib) deleteOther() error {
	var errs []error
	for _, r := range f.other {
		if err := f.w.queue(routeOp{prefix: r.prefix, del: true, metric: r.metric}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := f.w.flush(); err != nil {
		errs = append(errs, err)
	}
	for _, r := range f.w.take() {
		if r.err != nil && !errors.Is(r.err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s of another metric: %w", r.prefix, r.err))
		}
	}
	f.other = nil
	return errors.Join(errs...)
}

// count counts our routes per family.
func (f *fib) count() map[families]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[families]int{}
	for k := range f.have {
		if k.is4 {
			out[famIPv4]++
		} else {
			out[famIPv6]++
		}
	}
	return out
}

// installed reports whether our route for p goes via nh.
func (f *fib) installed(p netip.Prefix, nh netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, _ := f.get(p)
	for _, n := range h.nhs {
		if n.addr == nh.WithZone("") {
			return true
		}
	}
	return false
}

// withLinks gives each next hop without an interface the one the kernel
// would use to reach it (looked up once per address and pass), so that a
// route keeps working when the gateway is reachable over several links.
func (f *fib) withLinks(nhs []nexthop, links map[netip.Addr]int) []nexthop {
	out := nhs
	for i, nh := range nhs {
		if nh.ifindex != 0 {
			continue
		}
		idx, ok := links[nh.addr]
		if !ok {
			idx = f.linkFor(nh)
			links[nh.addr] = idx
		}
		if idx == 0 {
			continue
		}
		if &out[0] == &nhs[0] {
			out = slices.Clone(nhs)
		}
		out[i].ifindex = idx
	}
	return out
}

// flush deletes every route of ours.
func (f *fib) flush() error {
	_, err := f.sync(fibRoutes{}, true, true)
	return err
}

// linkFor returns the interface for a next hop: its own for link-local
// ones, else the one the kernel would use to reach it (0 lets the kernel
// choose, which fails cleanly when the gateway is unreachable).
func (f *fib) linkFor(nh nexthop) int {
	if nh.ifindex != 0 {
		return nh.ifindex
	}
	rs, err := f.h.RouteGet(nh.addr.AsSlice())
	if err != nil || len(rs) == 0 {
		return 0
	}
	return rs[0].LinkIndex
}

func prefixOf(dst *net.IPNet, fam int) (netip.Prefix, bool) {
	if dst == nil {
		if fam == netlink.FAMILY_V4 {
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
		}
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
	}
	a, ok := netip.AddrFromSlice(dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	bits, _ := dst.Mask.Size()
	return netip.PrefixFrom(a, bits).Masked(), true
}

// normalize sorts and de-duplicates next hops.
func normalize(nhs []nexthop) []nexthop {
	slices.SortFunc(nhs, func(a, b nexthop) int {
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		return a.ifindex - b.ifindex
	})
	return slices.Compact(nhs)
}

func (r fibRoutes) String() string {
	var b strings.Builder
	for p, nhs := range r {
		fmt.Fprintf(&b, "%s via %v; ", p, nhs)
	}
	return b.String()
}
