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
	// mine are the prefixes this process installed: before the RIB is
	// synced only these may be deleted, so that routes kept from a
	// previous process (graceful restart) stay until the peers resent
	// theirs.
	mine map[netip.Prefix]bool
}

func newFIB(table, proto int, log *slog.Logger) (*fib, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &fib{h: h, table: table, proto: netlink.RouteProtocol(proto), log: log, mine: map[netip.Prefix]bool{}}, nil
}

func (f *fib) close() { f.h.Close() }

// list returns the speaker's routes in the kernel, and those with the
// speaker's protocol but another metric (from another version: they are
// deleted once synced).
func (f *fib) list() (fibRoutes, []netlink.Route, error) {
	out := fibRoutes{}
	var other []netlink.Route
	filter := &netlink.Route{Table: f.table, Protocol: f.proto}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := f.h.RouteListFiltered(fam, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			p, ok := prefixOf(r.Dst, fam)
			if !ok {
				continue
			}
			if r.Priority != routeMetric {
				other = append(other, r)
				continue
			}
			var nhs []nexthop
			if len(r.MultiPath) > 0 {
				for _, m := range r.MultiPath {
					nhs = append(nhs, gateway(m.Gw, m.Via, m.LinkIndex))
				}
			} else {
				nhs = append(nhs, gateway(r.Gw, r.Via, r.LinkIndex))
			}
			out[p] = normalize(append(out[p], nhs...))
		}
	}
	return out, other, nil
}

// sync makes the kernel hold want. Routes of ours that want lacks are
// deleted when full is set, or when this process installed them.
func (f *fib) sync(want fibRoutes, full bool) error {
	have, other, err := f.list()
	if err != nil {
		return err
	}
	var errs []error
	for p, nhs := range want {
		if slices.Equal(have[p], nhs) {
			f.mine[p] = true
			continue
		}
		if err := f.replace(p, nhs); err != nil {
			errs = append(errs, err)
			continue
		}
		f.mine[p] = true
		f.log.Debug("bgp: route installed", "prefix", p, "nexthops", nhs)
	}
	for p := range have {
		if _, ok := want[p]; ok || (!full && !f.mine[p]) {
			continue
		}
		if err := f.del(p); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(f.mine, p)
		f.log.Debug("bgp: route removed", "prefix", p)
	}
	if full {
		for _, r := range other {
			if err := f.h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("delete route %s metric %d: %w", r.Dst, r.Priority, err))
			}
		}
	}
	return errors.Join(errs...)
}

// flush deletes every route of ours.
func (f *fib) flush() error {
	return f.sync(fibRoutes{}, true)
}

func (f *fib) replace(p netip.Prefix, nhs []nexthop) error {
	r := &netlink.Route{
		Dst:      ipNet(p),
		Table:    f.table,
		Protocol: f.proto,
		Priority: routeMetric,
	}
	if len(nhs) == 1 {
		r.LinkIndex = f.linkFor(nhs[0])
		r.Gw, r.Via = gwVia(p, nhs[0].addr)
	} else {
		for _, nh := range nhs {
			m := &netlink.NexthopInfo{LinkIndex: f.linkFor(nh)}
			m.Gw, m.Via = gwVia(p, nh.addr)
			r.MultiPath = append(r.MultiPath, m)
		}
	}
	if err := f.h.RouteReplace(r); err != nil {
		return fmt.Errorf("install route %s via %s: %w", p, nhs, err)
	}
	return nil
}

func (f *fib) del(p netip.Prefix) error {
	r := &netlink.Route{Dst: ipNet(p), Table: f.table, Protocol: f.proto, Priority: routeMetric}
	if err := f.h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s: %w", p, err)
	}
	return nil
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

// gwVia sets a same-family gateway as Gw and an IPv6 gateway of an IPv4
// route as Via (RFC 8950 routes: "via inet6").
func gwVia(p netip.Prefix, gw netip.Addr) (net.IP, netlink.Destination) {
	if p.Addr().Is4() && gw.Is6() {
		return nil, &netlink.Via{AddrFamily: netlink.FAMILY_V6, Addr: gw.AsSlice()}
	}
	return gw.AsSlice(), nil
}

func gateway(gw net.IP, via netlink.Destination, ifindex int) nexthop {
	var a netip.Addr
	if gw != nil {
		a, _ = netip.AddrFromSlice(gw)
	} else if v, ok := via.(*netlink.Via); ok {
		a, _ = netip.AddrFromSlice(v.Addr)
	}
	a = a.Unmap()
	nh := nexthop{addr: a}
	if a.IsLinkLocalUnicast() {
		nh.ifindex = ifindex
	}
	return nh
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

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
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
