package bpf

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Tunnel test addresses: the load balancers' encap sources lie in the
// environment's tunnel sources (newLBEnv), the untrusted ones do not; the
// served VIPs are local addresses of the node (programLB), as a backend has
// its VIPs on lo.
const (
	trusted6   = "2001:db8:5::99"
	trusted4   = "192.0.2.77"
	untrusted6 = "2001:db8:6666::99"
	untrusted4 = "203.0.113.66"
	served6    = "2001:db8:300::10"
	served4    = "198.51.100.200"
	endpoint4  = "10.200.9.9" // a local endpoint's address (TestDecap's setup)
	far4       = "203.0.113.200"
)

// tunnel6 and tunnel4 put an inner IP packet into an IPv6 or IPv4 outer
// header from src to the node's address of the family, as a frame from the
// top-of-rack switch.
func tunnel6(t testing.TB, src string, inner []byte) []byte {
	next := layers.IPProtocolIPv6
	if inner[0]>>4 == 4 {
		next = layers.IPProtocolIPv4
	}
	return fromTor(ipPacket(t, ip6(src, nodeAddr6.String(), next, 64), gopacket.Payload(inner)))
}

func tunnel4(t testing.TB, src string, inner []byte) []byte {
	next := layers.IPProtocolIPv4
	if inner[0]>>4 == 6 {
		next = layers.IPProtocolIPv6
	}
	return fromTor(ipPacket(t, ip4(src, nodeAddr4.String(), next, 64), gopacket.Payload(inner)))
}

// tcpTo6 and tcpTo4 are inner packets from the test clients to dst.
func tcpTo6(t testing.TB, dst string) []byte {
	l3 := ip6(client6, dst, layers.IPProtocolTCP, 63)
	return ipPacket(t, l3, tcpL(l3, 40000, 443, ack), gopacket.Payload(bytes.Repeat([]byte{0xab}, 20)))
}

func tcpTo4(t testing.TB, dst string) []byte {
	l3 := ip4(client4, dst, layers.IPProtocolTCP, 63)
	return ipPacket(t, l3, tcpL(l3, 50000, 80, ack), gopacket.Payload(bytes.Repeat([]byte{0xcd}, 20)))
}

// TestDecap: tunnel packets to the node's decap addresses lose their outer
// header and go to the kernel when they come from a tunnel source and their
// inner destination is the node's own; anything else about them is a
// counted drop - the node never relays a tunnelled packet - or, not to a
// decap address, passes untouched.
func TestDecap(t *testing.T) {
	decapped := func(mk func(testing.TB, string, []byte) []byte, src string, inner func(testing.TB, string) []byte, dst string) func(t *testing.T, e *lbEnv) result {
		return func(t *testing.T, e *lbEnv) result {
			in := inner(t, dst)
			return result{in: mk(t, src, in), want: fromTor(in)}
		}
	}
	dropped := func(mk func(testing.TB, string, []byte) []byte, src string, inner func(testing.TB, string) []byte, dst string) func(t *testing.T, e *lbEnv) result {
		return func(t *testing.T, e *lbEnv) result { return result{in: mk(t, src, inner(t, dst))} }
	}
	decap6, decap4 := st{DatapathLbStatLB_STAT_DECAP_IPV6: 1}, st{DatapathLbStatLB_STAT_DECAP_IPV4: 1}
	badSource := dr{DatapathDropReasonDROP_TUNNEL_SOURCE: 1}
	badDestination := dr{DatapathDropReasonDROP_TUNNEL_DESTINATION: 1}
	withEndpoint := func(t *testing.T, e *lbEnv) {
		r := NewRouter(e.objs.Router)
		ep := Endpoint{ID: 9, Ifindex: e.ifindex, HostMAC: uplinkMAC, MTU: 1500, Addrs: []netip.Addr{netip.MustParseAddr(endpoint4)}}
		e.must(t, r.SetEndpoint(ep, nil))
		t.Cleanup(func() { e.must(t, r.DeleteEndpoint(ep)) })
	}
	runLBCases(t, []lbCase{
		// Trusted source, inner destination the node's own: decapsulated.
		{
			name:    "ip6ip6 from a tunnel source to a local address (served vip): inner packet passed",
			packet:  decapped(tunnel6, trusted6, tcpTo6, served6),
			verdict: xdpPass, stats: decap6,
		},
		{
			name:    "ipv4-in-ipv6 from a tunnel source to a local ipv4 address: inner packet passed",
			packet:  decapped(tunnel6, trusted6, tcpTo4, served4),
			verdict: xdpPass, stats: decap6,
		},
		{
			name:    "ipip from a tunnel source to a local address: inner packet passed",
			packet:  decapped(tunnel4, trusted4, tcpTo4, served4),
			verdict: xdpPass, stats: decap4,
		},
		{
			name:    "ip6ip6 to the node's own underlay address (node_addrs): inner packet passed",
			packet:  decapped(tunnel6, trusted6, tcpTo6, nodeAddr6.String()),
			verdict: xdpPass, stats: decap6,
		},
		{
			name:    "ipip to a local endpoint's address: inner packet passed (the kernel routes it to the endpoint)",
			setup:   withEndpoint,
			packet:  decapped(tunnel4, trusted4, tcpTo4, endpoint4),
			verdict: xdpPass, stats: decap4,
		},
		// Untrusted outer source: dropped, whatever the inner packet.
		{
			name:    "ip6ip6 from an untrusted source: dropped",
			packet:  dropped(tunnel6, untrusted6, tcpTo6, served6),
			verdict: xdpDrop, drops: badSource,
		},
		{
			name:    "ipv4-in-ipv6 from an untrusted source: dropped",
			packet:  dropped(tunnel6, untrusted6, tcpTo4, served4),
			verdict: xdpDrop, drops: badSource,
		},
		{
			name:    "ipip from an untrusted source: dropped",
			packet:  dropped(tunnel4, untrusted4, tcpTo4, served4),
			verdict: xdpDrop, drops: badSource,
		},
		{
			name:    "ipip from an ipv4 source just outside the tunnel prefix: dropped",
			packet:  dropped(tunnel4, "192.0.2.96", tcpTo4, served4),
			verdict: xdpDrop, drops: badSource,
		},
		{
			name: "no tunnel sources configured: every tunnel packet dropped",
			setup: func(t *testing.T, e *lbEnv) {
				e.must(t, e.node.SetTunnelSources(nil))
				t.Cleanup(func() { e.must(t, e.node.SetTunnelSources(testTunnelSources)) })
			},
			packet:  dropped(tunnel6, trusted6, tcpTo6, served6),
			verdict: xdpDrop, drops: badSource,
		},
		// Trusted source, inner destination not the node's: dropped (the
		// open relay of issue 11).
		{
			name:    "ip6ip6 to a foreign inner destination: dropped, not relayed",
			packet:  dropped(tunnel6, trusted6, tcpTo6, "2001:db8:be::77"),
			verdict: xdpDrop, drops: badDestination,
		},
		{
			name:    "ipv4-in-ipv6 to a foreign inner destination: dropped",
			packet:  dropped(tunnel6, trusted6, tcpTo4, far4),
			verdict: xdpDrop, drops: badDestination,
		},
		{
			name:    "ipip to a foreign inner destination: dropped",
			packet:  dropped(tunnel4, trusted4, tcpTo4, far4),
			verdict: xdpDrop, drops: badDestination,
		},
		{
			name:    "ipip with a spoofed inner source to a foreign destination: dropped",
			packet:  func(t *testing.T, e *lbEnv) result { return result{in: tunnel4(t, trusted4, spoofedTo4(t, far4))} },
			verdict: xdpDrop, drops: badDestination,
		},
		{
			name:    "ipv4-in-ipv6 to a vip this node balances (not a local address): dropped",
			packet:  dropped(tunnel6, trusted6, tcpTo4, vip4),
			verdict: xdpDrop, drops: badDestination,
		},
		{
			name: "local address removed: tunnel packets to it dropped",
			setup: func(t *testing.T, e *lbEnv) {
				e.must(t, e.node.SetLocalAddrs([]netip.Addr{netip.MustParseAddr(served6)}))
				t.Cleanup(func() { e.must(t, e.node.SetLocalAddrs(testLocalAddrs)) })
			},
			packet:  dropped(tunnel4, trusted4, tcpTo4, served4),
			verdict: xdpDrop, drops: badDestination,
		},
		{
			name:    "untrusted source and foreign destination: counted as the source",
			packet:  dropped(tunnel4, untrusted4, tcpTo4, far4),
			verdict: xdpDrop, drops: badSource,
		},
		// Malformed tunnel packets from a trusted source.
		{
			name: "tunnel packet with a garbage inner packet: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: tunnel6(t, trusted6, bytes.Repeat([]byte{0x45}, 30))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_DECAP_MALFORMED: 1},
		},
		{
			name: "fragmented tunnel packet: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				outer := ip4(trusted4, nodeAddr4.String(), layers.IPProtocolIPv4, 64)
				outer.Flags = layers.IPv4MoreFragments
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(tcpTo4(t, served4))))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_DECAP_FRAGMENT: 1},
		},
		// Not to a decap address: not the decap stage's.
		{
			name: "tunnel packet to another address passes unchanged",
			packet: func(t *testing.T, e *lbEnv) result {
				outer := ip6(untrusted6, "2001:db8:ff::99", layers.IPProtocolIPv6, 64)
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(tcpTo6(t, "2001:db8:be::77"))))}
			},
			verdict: xdpPass,
		},
		{
			name: "address removed from the node: passes unchanged",
			setup: func(t *testing.T, e *lbEnv) {
				e.must(t, e.node.SetAddrs([]netip.Addr{nodeAddr4}))
				t.Cleanup(func() { e.must(t, e.node.SetAddrs([]netip.Addr{nodeAddr6, nodeAddr4})) })
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: tunnel6(t, trusted6, tcpTo6(t, served6))}
			},
			verdict: xdpPass,
		},
	})
}

// spoofedTo4 is an inner packet with a source that is nobody's.
func spoofedTo4(t testing.TB, dst string) []byte {
	l3 := ip4("192.0.2.99", dst, layers.IPProtocolTCP, 63)
	return ipPacket(t, l3, tcpL(l3, 1234, 80, syn))
}
