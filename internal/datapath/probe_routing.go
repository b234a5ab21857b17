package datapath

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/bpf"
)

// Policy routing of health probes. A probe socket carries the mark
// bpf.ProbeMark(backend id); this rule and table send its packets out of
// lo, where the probe program (AttachProbeEgress) tunnels them, without the
// kernel ever resolving a neighbour for the VIP:
//
//	ip rule  add pref 1020 fwmark 0xa1000000/0xff000000 lookup 41261   (-4 and -6)
//	ip route add local default dev lo table 41261 mtu 1280              (-4 and -6)
//
// The routes are "local": the kernel refuses a unicast IPv6 route via lo
// (it turns it into a reject route), and a local route is the one kind of
// route through lo that both families accept. The MTU keeps a probe's
// segments small enough for any underlay after encapsulation (lo's 64 KiB
// would otherwise set the MSS).
const (
	// ProbeTable is the routing table of marked probes.
	ProbeTable = 41261 // 0xa12d, "aird" (the mark's magic before it shrank to 8 bits: rules of an older aird are replaced)
	// ProbeRulePriority is the priority of the rule that selects it:
	// after the local table (0), before anything an operator is likely
	// to add in front of main (32766).
	ProbeRulePriority = 1020
	// probeRouteMTU caps probe packets (see above).
	probeRouteMTU = 1280
)

var probeFamilies = []int{netlink.FAMILY_V4, netlink.FAMILY_V6}

// InstallProbeRouting makes sure the probe rule and routes exist, for IPv4
// and IPv6, in the calling thread's network namespace. It is idempotent:
// what exists is kept, what differs is replaced.
func InstallProbeRouting() error {
	lo, err := netlink.LinkByName(ProbeInterface)
	if err != nil {
		return fmt.Errorf("probe routing: look up %s: %w", ProbeInterface, err)
	}
	var errs []error
	for _, fam := range probeFamilies {
		r := probeRoute(fam, lo.Attrs().Index)
		if err := netlink.RouteReplace(&r); err != nil {
			errs = append(errs, fmt.Errorf("probe routing: route %s: %w", r, err))
		}
		if err := ensureProbeRule(fam); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveProbeRouting removes the probe rules and the probe table's routes
// from the calling thread's network namespace; missing ones are fine.
func RemoveProbeRouting() error {
	var errs []error
	for _, fam := range probeFamilies {
		rules, err := probeRules(fam)
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range rules {
			if err := netlink.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("probe routing: delete rule %s: %w", r, err))
			}
		}
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: ProbeTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			errs = append(errs, fmt.Errorf("probe routing: list table %d: %w", ProbeTable, err))
		}
		for _, r := range routes {
			if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("probe routing: delete route %s: %w", r, err))
			}
		}
	}
	return errors.Join(errs...)
}

// ProbeRoutingInstalled reports whether both families' rule and route are
// in place in the calling thread's network namespace.
func ProbeRoutingInstalled() (bool, error) {
	for _, fam := range probeFamilies {
		rules, err := probeRules(fam)
		if err != nil || len(rules) == 0 {
			return false, err
		}
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: ProbeTable, Type: unix.RTN_LOCAL},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_TYPE)
		if err != nil || len(routes) == 0 {
			return false, err
		}
	}
	return true, nil
}

func probeRoute(family, lo int) netlink.Route {
	dst := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	if family == netlink.FAMILY_V6 {
		dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return netlink.Route{Family: family, Dst: dst, LinkIndex: lo, Table: ProbeTable, Type: unix.RTN_LOCAL,
		Scope: netlink.SCOPE_HOST, MTU: probeRouteMTU}
}

func probeRule(family int) *netlink.Rule {
	r := netlink.NewRule()
	mask := bpf.ProbeMarkMask
	r.Family, r.Priority, r.Table, r.Mark, r.Mask = family, ProbeRulePriority, ProbeTable, bpf.ProbeMarkMagic, &mask
	return r
}

// probeRules lists the rules that look up the probe table.
func probeRules(family int) ([]netlink.Rule, error) {
	rules, err := netlink.RuleListFiltered(family, &netlink.Rule{Table: ProbeTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("probe routing: list rules: %w", err)
	}
	return rules, nil
}

// ensureProbeRule adds the rule unless it exists as wanted; rules for the
// table that differ (another mark, priority) are replaced.
func ensureProbeRule(family int) error {
	rules, err := probeRules(family)
	if err != nil {
		return err
	}
	want := probeRule(family)
	found := false
	for _, r := range rules {
		if r.Priority == want.Priority && r.Mark == want.Mark && r.Mask != nil && *r.Mask == *want.Mask &&
			r.Src == nil && r.Dst == nil && r.IifName == "" && r.OifName == "" && !r.Invert && !found {
			found = true
			continue
		}
		if err := netlink.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("probe routing: delete stale rule %s: %w", r, err)
		}
	}
	if found {
		return nil
	}
	if err := netlink.RuleAdd(want); err != nil {
		return fmt.Errorf("probe routing: add rule %s: %w", want, err)
	}
	return nil
}
