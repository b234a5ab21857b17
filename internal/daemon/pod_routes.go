package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// podRouteProtocol stamps the kernel routes aird installs for its pod
// prefixes (rtm_protocol), next to the BGP speaker's 201: every route in the
// main table with it is aird's, so a restart or --cleanup finds them all.
// Name it in /etc/iproute2/rt_protos.d/aird.conf ("202 aird-ipam").
const podRouteProtocol = 202

// syncPodRoutes makes the main table hold exactly one "unreachable" route
// per pod prefix: the part of a pod prefix no endpoint route (more
// specific) covers is answered with ICMP unreachable instead of following a
// default route back to the switch.
func syncPodRoutes(prefixes []netip.Prefix) error {
	have, err := podRoutes()
	if err != nil {
		return err
	}
	want := map[netip.Prefix]bool{}
	for _, p := range prefixes {
		want[p] = true
		r := unreachableRoute(p)
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("pod prefix %s: unreachable route: %w", p, err)
		}
	}
	for _, r := range have {
		if p, ok := routePrefix(r); ok && !want[p] {
			if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("pod prefix %s: remove unreachable route: %w", p, err)
			}
		}
	}
	return nil
}

// RemovePodRoutes deletes every route aird installed for pod prefixes
// (aird --cleanup).
func RemovePodRoutes() (int, error) {
	have, err := podRoutes()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range have {
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
			return n, fmt.Errorf("remove route %s: %w", r.Dst, err)
		}
		n++
	}
	return n, nil
}

func podRoutes() ([]netlink.Route, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: podRouteProtocol},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list pod prefix routes: %w", err)
	}
	return rs, nil
}

func unreachableRoute(p netip.Prefix) *netlink.Route {
	fam := netlink.FAMILY_V6
	if p.Addr().Is4() {
		fam = netlink.FAMILY_V4
	}
	return &netlink.Route{
		Dst:      &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Type:     unix.RTN_UNREACHABLE,
		Protocol: podRouteProtocol,
		Table:    unix.RT_TABLE_MAIN,
		Family:   fam,
	}
}

func routePrefix(r netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}
