package bpf

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestRouterFromUplink: packets arriving on an uplink for the node's
// endpoints are delivered to their links by XDP (or handed to the kernel
// when the fast path cannot), tunnel packets for DSR endpoints
// decapsulated.
func TestRouterFromUplink(t *testing.T) {
	toPod := func(dst string, hop uint8, payload int) func(t *testing.T, e *routerEnv) ([]byte, []byte) {
		return func(t *testing.T, e *routerEnv) ([]byte, []byte) {
			ep := e.endpointOf(dst)
			in := fromTor(tcpTo(t, client6For(dst), dst, hop, payload))
			if ep == nil || hop <= 1 {
				return in, nil
			}
			return in, frame(ep.MAC, ep.HostMAC, tcpTo(t, client6For(dst), dst, hop-1, payload))
		}
	}
	tunnel := func(outerDst string, inner []byte) []byte {
		next := layers.IPProtocolIPv6
		if inner[0]>>4 == 4 {
			next = layers.IPProtocolIPv4
		}
		return fromTor(ipPacket(t, ip6("2001:db8:5::99", outerDst, next, 64), gopacket.Payload(inner)))
	}
	inner6 := tcp6(t, client6, 40000, 443, ack, 63, 20)
	inner4 := tcp4(t, vip4, 50000, 80, ack, 63, 20)
	runRouterCases(t, []routerCase{
		{
			name:    "ipv6 to a local endpoint: hop limit decremented, endpoint MACs, redirected to its link",
			packet:  toPod(pod1, 64, 20),
			verdict: xdpRedirect, target: "ep1",
			events:   rs{rDelivered: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": rx(14 + 40 + 20 + 20)},
		},
		{
			name:    "ipv4 to a local endpoint: ttl and checksum updated",
			packet:  toPod(pod14, 64, 20),
			verdict: xdpRedirect, target: "ep1",
			events:   rs{rDelivered: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": rx(14 + 20 + 20 + 20)},
		},
		{
			name:    "another endpoint: its own link",
			packet:  toPod(pod2, 30, 0),
			verdict: xdpRedirect, target: "ep2",
			events:   rs{rDelivered: 1},
			counters: map[string]DatapathEndpointCounters{"ep2": rx(14 + 40 + 20)},
		},
		{
			name:    "hop limit 1: to the kernel unchanged (time exceeded)",
			packet:  toPod(pod1, 1, 20),
			verdict: xdpPass, events: rs{DatapathRouterStatROUTER_STAT_TTL_PASS: 1},
		},
		{
			name: "endpoint MAC not known yet: to the kernel, which resolves it",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromTor(tcpTo(t, client6, pod3, 64, 10)), nil
			},
			verdict: xdpPass, events: rs{DatapathRouterStatROUTER_STAT_NO_MAC_PASS: 1},
		},
		{
			name: "larger than the endpoint's MTU: to the kernel (packet too big)",
			setup: func(t *testing.T, e *routerEnv) {
				ep := e.endpoints["ep2"]
				small := ep
				small.MTU = 100
				e.must(t, e.router.SetEndpoint(small, &ep))
				t.Cleanup(func() { e.must(t, e.router.SetEndpoint(ep, &small)) })
			},
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromTor(tcpTo(t, client6, pod2, 64, 100)), nil
			},
			verdict: xdpPass, events: rs{DatapathRouterStatROUTER_STAT_KERNEL_PASS: 1},
		},
		{
			name: "address in no endpoint: not the router's (passed)",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromTor(tcpTo(t, client6, "2001:db8:aa::99", 64, 10)), nil
			},
			verdict: xdpPass,
		},
		{
			name: "ip6ip6 to a dsr endpoint, inner to its vip: decapsulated and delivered",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return tunnel(pod1, inner6), frame(c1MAC, ep1MAC, inner6)
			},
			verdict: xdpRedirect, target: "ep1",
			events:   rs{DatapathRouterStatROUTER_STAT_DECAP: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": rx(14 + len(inner6))},
		},
		{
			name: "ipv4-in-ipv6 to a dsr endpoint, inner to its ipv4 vip: decapsulated",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return tunnel(pod1, inner4), frame(c1MAC, ep1MAC, inner4)
			},
			verdict: xdpRedirect, target: "ep1",
			events:   rs{DatapathRouterStatROUTER_STAT_DECAP: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": rx(14 + len(inner4))},
		},
		{
			name: "tunnel to a dsr endpoint with any other inner destination: dropped (no relay)",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return tunnel(pod1, tcpTo(t, client6, far6, 63, 0)), nil
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_ENDPOINT_DECAP: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": {DropDecap: 1}},
		},
		{
			name: "tunnel to a dsr endpoint from an untrusted source: dropped",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromTor(ipPacket(t, ip6(untrusted6, pod1, layers.IPProtocolIPv6, 64), gopacket.Payload(inner6))), nil
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_TUNNEL_SOURCE: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": {DropDecap: 1}},
		},
		{
			name: "ipip to a dsr endpoint from an untrusted source: dropped",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromTor(ipPacket(t, ip4(untrusted4, pod14, layers.IPProtocolIPv4, 64), gopacket.Payload(inner4))), nil
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_TUNNEL_SOURCE: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": {DropDecap: 1}},
		},
		{
			name: "tunnel to a dsr endpoint with a garbage inner packet: dropped",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return tunnel(pod1, append([]byte{0x60}, bytes.Repeat([]byte{0xff}, 39)...)), nil
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_DECAP_MALFORMED: 1},
		},
		{
			name: "tunnel to an endpoint without vips: delivered as it is",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				in := tunnel(pod2, inner6)
				out := frame(c2MAC, ep2MAC, ipPacket(t, ip6("2001:db8:5::99", pod2, layers.IPProtocolIPv6, 63), gopacket.Payload(inner6)))
				return in, out
			},
			verdict: xdpRedirect, target: "ep2",
			events:   rs{rDelivered: 1},
			counters: map[string]DatapathEndpointCounters{"ep2": rx(14 + 40 + len(inner6))},
		},
		{
			name: "endpoint removed: its address is not the router's any more",
			setup: func(t *testing.T, e *routerEnv) {
				ep := e.endpoints["ep2"]
				e.must(t, e.router.DeleteEndpoint(ep))
				t.Cleanup(func() { e.must(t, e.router.SetEndpoint(ep, nil)) })
			},
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromTor(tcpTo(t, client6, pod2, 64, 10)), nil
			},
			verdict: xdpPass,
		},
	})
}

// TestRouterFromEndpoint: what an endpoint sends is source-checked and
// routed: to another endpoint, or out of the uplink the FIB gives.
func TestRouterFromEndpoint(t *testing.T) {
	fromPod := func(ep string, dst net.HardwareAddr, ip []byte) []byte {
		return frame(dst, c1MAC, ip)
	}
	viaGW := func(ip []byte) []byte { return frame(gwMAC, uplinkMAC, ip) }
	runRouterCases(t, []routerCase{
		{
			name: "to a remote address: hop limit decremented, next hop from the FIB, out of the uplink",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, pod1, far6, 64, 30)), viaGW(tcpTo(t, pod1, far6, 63, 30))
			},
			verdict: xdpRedirect, target: "uplink",
			events:   rs{rForwarded: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": tx(14 + 40 + 20 + 30)},
		},
		{
			name: "the next packet of the pair takes the cached route, even after the neighbour changed",
			from: "ep1",
			setup: func(t *testing.T, e *routerEnv) {
				// A lifetime longer than the case: under load the
				// neighbour change below can outlast the default 25
				// jiffies, and the second packet would look up the FIB.
				s := e.settings
				s.NexthopTTL = time.Hour
				e.withSettings(t, s)
				e.runProg(t, e.objs.Programs.Endpoint, fromPod("ep1", ep1MAC, tcpTo(t, pod1, far6, 64, 1)), e.links["ep1"].ifindex)
				testutil.Run(t, "ip", "-n", e.ns, "neigh", "replace", "2001:db8:ff::fe", "lladdr", "02:aa:00:00:00:ee", "dev", e.up, "nud", "permanent")
				t.Cleanup(func() {
					testutil.Run(t, "ip", "-n", e.ns, "neigh", "replace", "2001:db8:ff::fe", "lladdr", gwMAC.String(), "dev", e.up, "nud", "permanent")
				})
			},
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, pod1, far6, 64, 30)), viaGW(tcpTo(t, pod1, far6, 63, 30))
			},
			verdict:  xdpRedirect,
			events:   rs{rForwarded: 1, DatapathRouterStatROUTER_STAT_ROUTE_CACHED: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": tx(14 + 40 + 20 + 30)},
		},
		{
			name: "ipv4 to a remote address",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, pod14, "10.99.0.7", 64, 0)), viaGW(tcpTo(t, pod14, "10.99.0.7", 63, 0))
			},
			verdict: xdpRedirect, target: "uplink",
			events:   rs{rForwarded: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": tx(14 + 20 + 20)},
		},
		{
			name: "a dsr reply from its vip: allowed",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, vip6, far6, 64, 0)), viaGW(tcpTo(t, vip6, far6, 63, 0))
			},
			verdict: xdpRedirect, target: "uplink",
			events:   rs{rForwarded: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": tx(14 + 40 + 20)},
		},
		{
			name: "to another local endpoint: delivered to its link",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, pod1, pod2, 64, 5)), frame(c2MAC, ep2MAC, tcpTo(t, pod1, pod2, 63, 5))
			},
			verdict: xdpRedirect, target: "ep2",
			events: rs{rDelivered: 1},
			counters: map[string]DatapathEndpointCounters{
				"ep1": tx(14 + 40 + 20 + 5), "ep2": rx(14 + 40 + 20 + 5)},
		},
		{
			name: "spoofed source: dropped and counted for the endpoint",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, pod2, far6, 64, 0)), nil
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_SPOOFED: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": {DropSpoofed: 1}},
		},
		{
			name: "another endpoint's vip as source: dropped",
			from: "ep2",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return frame(ep2MAC, c2MAC, tcpTo(t, vip6, far6, 64, 0)), nil
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_SPOOFED: 1},
			counters: map[string]DatapathEndpointCounters{"ep2": {DropSpoofed: 1}},
		},
		{
			name: "neighbour solicitation: link scope, to the kernel",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				l3 := ip6("fe80::cc:1", "ff02::1:ff00:1", layers.IPProtocolICMPv6, 255)
				ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
				_ = ic.SetNetworkLayerForChecksum(l3)
				return frame(net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 1}, c1MAC, ipPacket(t, l3, ic, gopacket.Payload(make([]byte, 20)))), nil
			},
			verdict: xdpPass, events: rs{DatapathRouterStatROUTER_STAT_LINK_LOCAL_PASS: 1},
		},
		{
			name: "arp: to the kernel",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				arp := frame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, c1MAC, make([]byte, 28))
				arp[12], arp[13] = 0x08, 0x06
				return arp, nil
			},
			verdict: xdpPass, events: rs{DatapathRouterStatROUTER_STAT_LINK_LOCAL_PASS: 1},
		},
		{
			name: "no route: to the kernel (which answers unreachable)",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, pod1, "2001:db8:dead::1", 64, 0)), nil
			},
			verdict: xdpPass, events: rs{DatapathRouterStatROUTER_STAT_KERNEL_PASS: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": tx(14 + 40 + 20)},
		},
		{
			name: "next hop not resolved: to the kernel",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, pod1, "2001:db8:bad::1", 64, 0)), nil
			},
			verdict: xdpPass, events: rs{DatapathRouterStatROUTER_STAT_NO_NEIGH_PASS: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": tx(14 + 40 + 20)},
		},
		{
			name: "to the node itself: to the kernel",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, pod1, nodeAddr6.String(), 64, 0)), nil
			},
			verdict: xdpPass, events: rs{DatapathRouterStatROUTER_STAT_KERNEL_PASS: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": tx(14 + 40 + 20)},
		},
		{
			name: "hop limit 1: to the kernel",
			from: "ep1",
			packet: func(t *testing.T, e *routerEnv) ([]byte, []byte) {
				return fromPod("ep1", ep1MAC, tcpTo(t, pod1, far6, 1, 0)), nil
			},
			verdict: xdpPass, events: rs{DatapathRouterStatROUTER_STAT_TTL_PASS: 1},
			counters: map[string]DatapathEndpointCounters{"ep1": tx(14 + 40 + 20)},
		},
	})
}

// endpointOf returns the endpoint holding address a, or nil.
func (e *routerEnv) endpointOf(a string) *Endpoint {
	for _, ep := range e.endpoints {
		for _, x := range ep.Addrs {
			if x.String() == a {
				return &ep
			}
		}
	}
	return nil
}

// client6For is a client address of dst's family.
func client6For(dst string) string {
	if bytes.ContainsRune([]byte(dst), ':') {
		return client6
	}
	return client4
}
