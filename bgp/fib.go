package bgp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

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

// fib installs the speaker's routes in one kernel table, stamped with the
// speaker's protocol number, and removes them. Every route in that table
// with that protocol is the speaker's.
type fib struct {
	h     *netlink.Handle
	table int
	proto netlink.RouteProtocol
	log   *slog.Logger
	w     *routeWriter
	// mine are the prefixes this process installed: before the RIB is
	// synced only these may be deleted, so that routes kept from a
	// previous process (graceful restart) stay until the peers resent
	// theirs.
	mine map[netip.Prefix]bool
	// have is what the kernel holds of ours as far as this process
	// knows: read from the kernel (a dump) when haveValid is false, on a
	// periodic pass and after a failed change, else kept up to date
	// with our own changes, so that a pass during a bulk load does not
	// dump 100,000 routes to change a few.
	have      fibRoutes
	other     []keptRoute
	haveValid bool
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
	return &fib{h: h, w: w, table: table, proto: netlink.RouteProtocol(proto), log: log, mine: map[netip.Prefix]bool{}}, nil
}

func (f *fib) close() {
	f.h.Close()
	f.w.close()
}

// list returns the speaker's routes in the kernel, and those with the
// speaker's protocol but another metric (from another version: they are
// deleted once synced).
func (f *fib) list() (fibRoutes, []keptRoute, error) {
	routes, err := f.w.dump()
	if err != nil {
		return nil, nil, err
	}
	out := make(fibRoutes, len(routes))
	var other []keptRoute
	for _, r := range routes {
		if r.metric != routeMetric {
			other = append(other, r)
			continue
		}
		out[r.prefix] = normalize(append(out[r.prefix], r.nhs...))
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
func (f *fib) sync(want fibRoutes, full, dump bool) (changed int, err error) {
	if dump || !f.haveValid {
		have, other, err := f.list()
		if err != nil {
			return 0, err
		}
		f.have, f.other, f.haveValid = have, other, true
	}
	links := map[netip.Addr]int{} // next hop -> interface, for this pass
	var errs []error
	queue := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	installed, removed := 0, 0
	for p, nhs := range want {
		if slices.Equal(f.have[p], nhs) {
			f.mine[p] = true
			continue
		}
		queue(f.w.replace(p, f.withLinks(nhs, links)))
		installed++
	}
	for p := range f.have {
		if _, ok := want[p]; ok || (!full && !f.mine[p]) {
			continue
		}
		queue(f.w.del(p))
		removed++
	}
	queue(f.w.flush())
	failed := 0
	for _, r := range f.w.take() {
		switch {
		case r.del && (r.err == nil || errors.Is(r.err, unix.ESRCH)):
			delete(f.have, r.prefix)
			delete(f.mine, r.prefix)
		case r.err == nil:
			f.have[r.prefix] = want[r.prefix]
			f.mine[r.prefix] = true
		default:
			f.haveValid = false // read the kernel again next time
			if failed++; failed <= maxReportedErrors {
				what := "install route %s via %v: %w"
				if r.del {
					what = "delete route %s%v: %w"
				}
				errs = append(errs, fmt.Errorf(what, r.prefix, r.nhs, r.err))
			}
		}
	}
	if failed > maxReportedErrors {
		errs = append(errs, fmt.Errorf("and %d more route errors", failed-maxReportedErrors))
	}
	if full && len(f.other) > 0 {
		for _, r := range f.other {
			queue(f.w.queue(routeOp{prefix: r.prefix, del: true, metric: r.metric}))
		}
		queue(f.w.flush())
		for _, r := range f.w.take() {
			if r.err != nil && !errors.Is(r.err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("delete route %s of another metric: %w", r.prefix, r.err))
			}
		}
		f.other = nil
	}
	if installed+removed > 0 {
		f.log.Debug("bgp: FIB pass", "installed", installed, "removed", removed, "failed", failed, "routes", len(f.have))
	}
	return installed + removed, errors.Join(errs...)
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
