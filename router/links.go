package router

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// hostIfPrefix starts the name of every host-side link aird creates.
const hostIfPrefix = "air"

// hostIfName is the host side's name for an endpoint: "air" + 11 hex
// digits of a hash of its name (14 bytes).
func hostIfName(name string) string {
	h := sha256.Sum256([]byte("aird-endpoint:" + name))
	return hostIfPrefix + hex.EncodeToString(h[:])[:11]
}

// isHostIfName reports whether an interface name has hostIfName's shape.
func isHostIfName(n string) bool {
	if len(n) != len(hostIfPrefix)+11 || !strings.HasPrefix(n, hostIfPrefix) {
		return false
	}
	_, err := hex.DecodeString(n[len(hostIfPrefix):] + "0")
	return err == nil
}

// endpointMAC is the container side's MAC: locally administered, unicast,
// derived from the endpoint's name.
func endpointMAC(name string) net.HardwareAddr {
	h := sha256.Sum256([]byte("aird-mac:" + name))
	mac := net.HardwareAddr(h[:6])
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

// hostPrefix is a as a host route prefix (/128 or /32).
func hostPrefix(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// createVeth creates the endpoint's veth pair, the container side directly
// in ns, and returns the host side.
func createVeth(ep *Endpoint, ns netns.NsHandle) (netlink.Link, error) {
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU = ep.HostIf, ep.MTU
	mac, _ := net.ParseMAC(ep.MAC)
	v := &netlink.Veth{LinkAttrs: la, PeerName: ep.Ifname, PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(v); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create veth %s/%s: %s or %s exists already (in the node's or the container's namespace)", ep.HostIf, ep.Ifname, ep.HostIf, ep.Ifname)
		}
		return nil, fmt.Errorf("create veth %s/%s: %w", ep.HostIf, ep.Ifname, err)
	}
	l, err := netlink.LinkByName(ep.HostIf)
	if err != nil {
		_ = netlink.LinkDel(v)
		return nil, fmt.Errorf("veth %s: %w", ep.HostIf, err)
	}
	return l, nil
}

// configureContainer sets up the container side in ns: addresses, link up,
// gateways with permanent neighbour entries, default routes, VIPs on lo,
// offloads for XDP.
func configureContainer(ep *Endpoint, ns netns.NsHandle, hostMAC net.HardwareAddr) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", ep.Netns, err)
	}
	defer h.Close()
	l, err := h.LinkByName(ep.Ifname)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", ep.Ifname, ep.Netns, err)
	}
	for _, a := range ep.Addrs {
		if err := h.AddrReplace(l, &netlink.Addr{IPNet: hostPrefix(a), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s on %s: %w", a, ep.Ifname, err)
		}
	}
	if lo, err := h.LinkByName("lo"); err == nil {
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("lo up in %s: %w", ep.Netns, err)
		}
		for _, v := range ep.VIPs {
			if err := h.AddrReplace(lo, &netlink.Addr{IPNet: hostPrefix(v), Flags: unix.IFA_F_NODAD}); err != nil {
				return fmt.Errorf("vip %s on lo: %w", v, err)
			}
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s up: %w", ep.Ifname, err)
	}
	idx := l.Attrs().Index
	for _, fam := range familiesOf(ep.Addrs) {
		gw := GatewayIPv6
		if fam == netlink.FAMILY_V4 {
			gw = GatewayIPv4
		}
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: fam, State: netlink.NUD_PERMANENT,
			IP: gw.AsSlice(), HardwareAddr: hostMAC}); err != nil {
			return fmt.Errorf("gateway neighbour %s: %w", gw, err)
		}
		r := &netlink.Route{LinkIndex: idx, Gw: gw.AsSlice(), Family: fam}
		if fam == netlink.FAMILY_V4 {
			r.Flags = int(netlink.FLAG_ONLINK)
		}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return inNetns(ns, func() error { return prepareForXDP(ep.Ifname) })
}

// familiesOf returns the netlink families of addrs, IPv6 first.
func familiesOf(addrs []netip.Addr) []int {
	var v6, v4 bool
	for _, a := range addrs {
		v6, v4 = v6 || a.Is6(), v4 || a.Is4()
	}
	var out []int
	if v6 {
		out = append(out, netlink.FAMILY_V6)
	}
	if v4 {
		out = append(out, netlink.FAMILY_V4)
	}
	return out
}

// configureHost sets up the host side of an endpoint's link: forwarding,
// link up, a route to each address, and a permanent neighbour entry for
// each when the endpoint's MAC is known. It is idempotent (Adopt runs it
// again).
func configureHost(ep *Endpoint, l netlink.Link, procSys string, hs *hostState) error {
	if err := hostSysctls(procSys, ep.HostIf); err != nil {
		return err
	}
	if ep.Kind == KindVM {
		if err := tapGateways(l); err != nil {
			return err
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 || hs == nil {
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s up: %w", ep.HostIf, err)
		}
	}
	return hostRoutes(ep, l, hs)
}

// hostRoutes installs the routes (and neighbours) of ep's addresses on l;
// with a snapshot of the host, only those it lacks.
func hostRoutes(ep *Endpoint, l netlink.Link, hs *hostState) error {
	idx := l.Attrs().Index
	mac, _ := net.ParseMAC(ep.MAC)
	if ep.MACLearned {
		mac = nil // the kernel keeps resolving it
	}
	for _, a := range ep.Addrs {
		if !hs.hasRoute(idx, a) {
			r := &netlink.Route{LinkIndex: idx, Dst: hostPrefix(a), Protocol: RouteProtocol, Scope: netlink.SCOPE_LINK, Family: family(a)}
			if err := netlink.RouteReplace(r); err != nil {
				return fmt.Errorf("route to %s via %s: %w", a, ep.HostIf, err)
			}
		}
		if mac == nil || hs.hasNeigh(idx, a, mac) {
			continue
		}
		if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: family(a), State: netlink.NUD_PERMANENT,
			IP: a.AsSlice(), HardwareAddr: mac}); err != nil {
			return fmt.Errorf("neighbour %s on %s: %w", a, ep.HostIf, err)
		}
	}
	return nil
}

// hostState is a snapshot of the node's links, endpoint routes and
// permanent neighbours, taken once when endpoints are adopted, so that
// adoption touches only what is missing (one dump each, instead of
// several netlink requests per endpoint under the RTNL lock).
type hostState struct {
	links  map[string]netlink.Link
	routes map[string]bool   // "ifindex prefix"
	neighs map[string]string // "ifindex address" -> MAC
}

func snapshotHost() *hostState {
	hs := &hostState{links: map[string]netlink.Link{}, routes: map[string]bool{}, neighs: map[string]string{}}
	if ls, err := listLinks(); err == nil {
		for _, l := range ls {
			hs.links[l.Attrs().Name] = l
		}
	}
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	if rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE); err == nil {
		for _, r := range rs {
			if r.Dst != nil {
				hs.routes[fmt.Sprint(r.LinkIndex, " ", r.Dst.String())] = true
			}
		}
	}
	if ns, err := netlink.NeighList(0, netlink.FAMILY_ALL); err == nil {
		for _, n := range ns {
			if n.State&netlink.NUD_PERMANENT != 0 && n.HardwareAddr != nil {
				hs.neighs[fmt.Sprint(n.LinkIndex, " ", n.IP.String())] = n.HardwareAddr.String()
			}
		}
	}
	return hs
}

func (hs *hostState) hasRoute(idx int, a netip.Addr) bool {
	return hs != nil && hs.routes[fmt.Sprint(idx, " ", hostPrefix(a).String())]
}

func (hs *hostState) hasNeigh(idx int, a netip.Addr, mac net.HardwareAddr) bool {
	return hs != nil && hs.neighs[fmt.Sprint(idx, " ", net.IP(a.AsSlice()).String())] == mac.String()
}

// removeHostRoutes deletes the routes and neighbours hostRoutes made
// (missing ones are fine).
func removeHostRoutes(ep *Endpoint, l netlink.Link) error {
	var errs []error
	idx := l.Attrs().Index
	for _, a := range ep.Addrs {
		r := &netlink.Route{LinkIndex: idx, Dst: hostPrefix(a), Protocol: RouteProtocol, Scope: netlink.SCOPE_LINK, Family: family(a)}
		if err := netlink.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("route to %s: %w", a, err))
		}
		n := &netlink.Neigh{LinkIndex: idx, Family: family(a), IP: a.AsSlice()}
		if err := netlink.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("neighbour %s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

// tapGateways puts the guests' gateways on a tap: fe80::1/64 and
// 169.254.1.1/32, so the kernel answers the guest's neighbour discovery.
func tapGateways(l netlink.Link) error {
	for _, p := range []string{"fe80::1/64", "169.254.1.1/32"} {
		pfx := netip.MustParsePrefix(p)
		a := &netlink.Addr{IPNet: &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())},
			Flags: unix.IFA_F_NODAD}
		if pfx.Addr().Is4() {
			a.Scope = unix.RT_SCOPE_LINK
		}
		if err := netlink.AddrReplace(l, a); err != nil {
			return fmt.Errorf("gateway %s on %s: %w", p, l.Attrs().Name, err)
		}
	}
	return nil
}

// removeTapGateways takes tapGateways' addresses off the tap.
func removeTapGateways(l netlink.Link) error {
	var errs []error
	for _, p := range []string{"fe80::1/64", "169.254.1.1/32"} {
		pfx := netip.MustParsePrefix(p)
		a := &netlink.Addr{IPNet: &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())}}
		if err := netlink.AddrDel(l, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("gateway %s on %s: %w", p, l.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

// hostSysctls turns forwarding on for an endpoint's host-side link (the
// XDP FIB lookup and the kernel both need it on the ingress interface; on
// IPv6 force_forwarding does it without the global switch) and router
// advertisements off.
func hostSysctls(root, dev string) error {
	set := func(path, val string) error {
		p := filepath.Join(root, path)
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == val {
			return nil // already so: a write would take the RTNL lock for nothing
		}
		if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
			return fmt.Errorf("sysctl %s = %s: %w", path, val, err)
		}
		return nil
	}
	if err := set("ipv4/conf/"+dev+"/forwarding", "1"); err != nil {
		return err
	}
	if err := set("ipv6/conf/"+dev+"/forwarding", "1"); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "ipv6/conf", dev, "force_forwarding")); err == nil {
		if err := set("ipv6/conf/"+dev+"/force_forwarding", "1"); err != nil {
			return err
		}
	}
	return set("ipv6/conf/"+dev+"/accept_ra", "0")
}

// listLinks lists the links, asking again when a change interrupted the
// dump (links come and go with endpoints).
func listLinks() ([]netlink.Link, error) {
	var ls []netlink.Link
	var err error
	for range 5 {
		if ls, err = netlink.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return ls, err
}
