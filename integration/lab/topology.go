package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// The rack's addressing (see doc.go).
const (
	VIP6 = "fd00:300::10" // the IPv6 VIP of every service
	VIP4 = "10.30.0.10"   // the IPv4 VIP, carried over the IPv6 underlay

	PortHTTP = 80   // HTTP: the backend answers with its name
	PortTCP  = 8080 // TCP: the backend says its name, then echoes lines
	PortUDP  = 8053 // UDP: the backend answers each datagram with its name

	ClientAddr6 = "fd00:c::1"
	ClientAddr4 = "10.0.0.1"

	asTor1 = 65101 // FRR
	asTor2 = 65102 // BIRD
	asLB   = 65001 // both LB nodes: one AS, so the ToRs see equal paths
	asNode = 65010 // the backend node of index i has AS asNode+i
)

// underlay is node i's loopback: its BGP next hop, probe source and
// router id's last byte.
func underlay(i int) string { return fmt.Sprintf("fd00:ff::%d", i) }

// tor2Addr and nodeTor2Addr are the two ends of node i's link to tor2.
func tor2Addr(i int) string     { return fmt.Sprintf("fd00:12:%d::1", i) }
func nodeTor2Addr(i int) string { return fmt.Sprintf("fd00:12:%d::2", i) }

// encapPrefix is the outer source range of LB node i's tunnels.
func encapPrefix(i int) string { return fmt.Sprintf("fd00:fe::%d:0/112", i) }

// TunnelSources covers every LB node's outer sources.
const TunnelSources = "fd00:fe::/64"

// podPrefixes are backend node i's pod prefixes.
func podPrefixes(i int) (string, string) {
	return fmt.Sprintf("fd00:200:%d::/64", i), fmt.Sprintf("10.200.%d.0/24", i)
}

// wire creates the namespaces and links, addresses and kernel settings.
func (l *Lab) wire() error {
	var err error
	if l.Client, err = l.addNetns("client"); err != nil {
		return err
	}
	tor1, err := l.addNetns("tor1")
	if err != nil {
		return err
	}
	tor2, err := l.addNetns("tor2")
	if err != nil {
		return err
	}
	l.Tor1 = &FRRTor{NS: tor1, Dir: l.Dir + "/frr"}
	l.Tor2 = &BIRDTor{NS: tor2, Socket: l.Dir + "/bird.ctl"}
	for _, ns := range []string{tor1, tor2} {
		if err := sysctls(ns, "net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1",
			"net.ipv6.fib_multipath_hash_policy=1", "net.ipv4.fib_multipath_hash_policy=1",
			"net.ipv6.conf.all.ignore_routes_with_linkdown=1", "net.ipv4.conf.all.ignore_routes_with_linkdown=1",
			// A switch keeps its addresses across a link flap (the
			// kernel would flush static IPv6 addresses on link down).
			"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1"); err != nil {
			return err
		}
	}
	if err := l.wireClient(); err != nil {
		return err
	}
	n := 0
	newNode := func(name, role string, asn int) (*Node, error) {
		n++
		if asn == 0 {
			asn = asNode + n
		}
		nd := &Node{Name: name, Role: role, Index: n, ASN: asn, lab: l}
		if nd.NS, err = l.addNetns(name); err != nil {
			return nil, err
		}
		return nd, l.wireNode(nd)
	}
	for i := 1; i <= 2; i++ {
		nd, err := newNode(fmt.Sprintf("lb%d", i), RoleLB, asLB)
		if err != nil {
			return err
		}
		l.LBs = append(l.LBs, nd)
	}
	for i := 1; i <= l.opts.BackendNodes; i++ {
		nd, err := newNode(fmt.Sprintf("be%d", i), RoleBackend, 0)
		if err != nil {
			return err
		}
		l.Nodes = append(l.Nodes, nd)
	}
	// tor1 reaches each node's loopback and tor2-side address through the
	// node's link-local address (an IGP would tell it; here it is static),
	// so the replies to probes and to connections from those addresses
	// find their way back through either ToR.
	for _, nd := range l.AllNodes() {
		ll, err := linkLocal(nd.NS, "up0")
		if err != nil {
			return err
		}
		nd.LinkLocal = ll
		for _, dst := range []string{underlay(nd.Index), nodeTor2Addr(nd.Index)} {
			if _, err := run("ip", "-n", tor1, "-6", "route", "add", dst+"/128", "via", ll, "dev", nd.tor1Port()); err != nil {
				return err
			}
		}
	}
	return nil
}

// AllNodes returns the LB nodes, then the backend nodes.
func (l *Lab) AllNodes() []*Node { return append(append([]*Node{}, l.LBs...), l.Nodes...) }

// wireClient links the client to both ToRs: its addresses on lo, an ECMP
// default route over both, and each ToR's default route back to it (the
// client stands for the world beyond the rack).
func (l *Lab) wireClient() error {
	c := l.Client
	for t, tor := range []string{l.Tor1.NS, l.Tor2.NS} {
		cdev, tdev := fmt.Sprintf("c%d", t), "c"
		v6, v4 := fmt.Sprintf("fd00:c%d::", t+1), fmt.Sprintf("10.1.%d.", t+1)
		if err := runAll(
			[]string{"ip", "link", "add", cdev, "netns", c, "type", "veth", "peer", "name", tdev, "netns", tor},
			[]string{"ip", "-n", c, "addr", "add", v6 + "2/64", "dev", cdev, "nodad"},
			[]string{"ip", "-n", c, "addr", "add", v4 + "2/24", "dev", cdev},
			[]string{"ip", "-n", tor, "addr", "add", v6 + "1/64", "dev", tdev, "nodad"},
			[]string{"ip", "-n", tor, "addr", "add", v4 + "1/24", "dev", tdev},
			[]string{"ip", "-n", c, "link", "set", cdev, "up"},
			[]string{"ip", "-n", tor, "link", "set", tdev, "up"},
		); err != nil {
			return err
		}
		if err := prepVeth(c, cdev); err != nil {
			return err
		}
		if err := prepVeth(tor, tdev); err != nil {
			return err
		}
		if t == 0 { // tor2's routes are BIRD's (static protocol)
			if err := runAll(
				[]string{"ip", "-n", tor, "-6", "route", "add", "default", "via", v6 + "2"},
				[]string{"ip", "-n", tor, "-4", "route", "add", "default", "via", v4 + "2"},
			); err != nil {
				return err
			}
		}
	}
	return runAll(
		[]string{"ip", "-n", c, "addr", "add", ClientAddr6 + "/128", "dev", "lo", "nodad"},
		[]string{"ip", "-n", c, "addr", "add", ClientAddr4 + "/32", "dev", "lo"},
		[]string{"ip", "netns", "exec", c, "sysctl", "-q", "-w",
			"net.ipv6.fib_multipath_hash_policy=1", "net.ipv4.fib_multipath_hash_policy=1",
			"net.ipv6.conf.all.ignore_routes_with_linkdown=1", "net.ipv4.conf.all.ignore_routes_with_linkdown=1"},
		[]string{"ip", "-n", c, "-6", "route", "add", "default", "src", ClientAddr6,
			"nexthop", "via", "fd00:c1::1", "dev", "c0", "nexthop", "via", "fd00:c2::1", "dev", "c1"},
		[]string{"ip", "-n", c, "-4", "route", "add", "default", "src", ClientAddr4,
			"nexthop", "via", "10.1.1.1", "dev", "c0", "nexthop", "via", "10.1.2.1", "dev", "c1"},
	)
}

// wireNode links node nd to both ToRs: up0 to tor1 (link-local only:
// unnumbered BGP), up1 to tor2 (numbered), its underlay address on lo.
func (l *Lab) wireNode(nd *Node) error {
	i, ns := nd.Index, nd.NS
	port := nd.tor1Port()
	if err := runAll(
		[]string{"ip", "link", "add", "up0", "netns", ns, "type", "veth", "peer", "name", port, "netns", l.Tor1.NS},
		[]string{"ip", "link", "add", "up1", "netns", ns, "type", "veth", "peer", "name", port, "netns", l.Tor2.NS},
		[]string{"ip", "-n", ns, "addr", "add", nodeTor2Addr(i) + "/64", "dev", "up1", "nodad"},
		[]string{"ip", "-n", l.Tor2.NS, "addr", "add", tor2Addr(i) + "/64", "dev", port, "nodad"},
		[]string{"ip", "-n", ns, "addr", "add", underlay(i) + "/128", "dev", "lo", "nodad"},
		[]string{"ip", "netns", "exec", ns, "sysctl", "-q", "-w",
			"net.ipv6.fib_multipath_hash_policy=1", "net.ipv4.fib_multipath_hash_policy=1",
			"net.ipv6.conf.all.ignore_routes_with_linkdown=1", "net.ipv4.conf.all.ignore_routes_with_linkdown=1"},
	); err != nil {
		return err
	}
	for _, e := range []struct{ ns, dev string }{{ns, "up0"}, {ns, "up1"}, {l.Tor1.NS, port}, {l.Tor2.NS, port}} {
		if _, err := run("ip", "-n", e.ns, "link", "set", e.dev, "up"); err != nil {
			return err
		}
		if err := prepVeth(e.ns, e.dev); err != nil {
			return err
		}
	}
	// The ToRs' ports take the node's XDP_TX frames (attachXDPPass).
	for _, tor := range []string{l.Tor1.NS, l.Tor2.NS} {
		if err := attachXDPPass(tor, port); err != nil {
			return err
		}
	}
	return nil
}

// prepVeth sets a veth end up for the lab: transmit checksumming off (a
// local socket's packets otherwise leave with a partial checksum, which an
// XDP redirect further on forwards as it is) and GRO on (frames XDP
// redirects into a veth are received only with NAPI).
func prepVeth(ns, dev string) error {
	_, err := run("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "gro", "on")
	return err
}

func sysctls(ns string, kv ...string) error {
	_, err := run(append([]string{"ip", "netns", "exec", ns, "sysctl", "-q", "-w"}, kv...)...)
	return err
}

// linkLocal returns dev's link-local address in ns once DAD is done.
func linkLocal(ns, dev string) (string, error) {
	var last string
	var addr string
	if !waitFor(10*time.Second, func() bool {
		out, err := run("ip", "-n", ns, "-6", "addr", "show", "dev", dev, "scope", "link")
		last = out
		if err != nil || strings.Contains(out, "tentative") {
			return false
		}
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
				addr = p.Addr().String()
				return true
			}
		}
		return false
	}) {
		return "", fmt.Errorf("%s/%s has no usable link-local address:\n%s", ns, dev, last)
	}
	return addr, nil
}
