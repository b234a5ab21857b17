package bpf

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestDecap: tunnel packets to the node's decap addresses lose their outer
// header and go to the kernel; anything else about them is a counted drop
// or passes untouched.
func TestDecap(t *testing.T) {
	runLBCases(t, []lbCase{
		{
			name: "ip6ip6 to a decap address: inner packet passed",
			packet: func(t *testing.T, e *lbEnv) result {
				inner := tcp6(t, client6, 40000, 443, ack, 63, 20)
				outer := ip6("2001:db8:5::99", nodeAddr6.String(), layers.IPProtocolIPv6, 64)
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(inner))), want: fromTor(inner)}
			},
			verdict: xdpPass, stats: st{DatapathLbStatLB_STAT_DECAP_IPV6: 1},
		},
		{
			name: "ipv4-in-ipv6 to a decap address: inner packet passed",
			packet: func(t *testing.T, e *lbEnv) result {
				inner := tcp4(t, vip4, 50000, 80, ack, 63, 20)
				outer := ip6("2001:db8:5::99", nodeAddr6.String(), layers.IPProtocolIPv4, 64)
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(inner))), want: fromTor(inner)}
			},
			verdict: xdpPass, stats: st{DatapathLbStatLB_STAT_DECAP_IPV6: 1},
		},
		{
			name: "ipip to a decap address: inner packet passed",
			packet: func(t *testing.T, e *lbEnv) result {
				inner := tcp4(t, vip4b, 50000, 80, ack, 63, 20)
				outer := ip4("192.0.2.77", nodeAddr4.String(), layers.IPProtocolIPv4, 64)
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(inner))), want: fromTor(inner)}
			},
			verdict: xdpPass, stats: st{DatapathLbStatLB_STAT_DECAP_IPV4: 1},
		},
		{
			name: "tunnel packet with a garbage inner packet: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				outer := ip6("2001:db8:5::99", nodeAddr6.String(), layers.IPProtocolIPv6, 64)
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(bytes.Repeat([]byte{0x45}, 30))))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_DECAP_MALFORMED: 1},
		},
		{
			name: "fragmented tunnel packet: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				outer := ip4("192.0.2.77", nodeAddr4.String(), layers.IPProtocolIPv4, 64)
				outer.Flags = layers.IPv4MoreFragments
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(tcp4(t, vip4b, 50000, 80, ack, 63, 20))))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_DECAP_FRAGMENT: 1},
		},
		{
			name: "tunnel packet to another address passes unchanged",
			packet: func(t *testing.T, e *lbEnv) result {
				outer := ip6("2001:db8:5::99", "2001:db8:ff::99", layers.IPProtocolIPv6, 64)
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(tcp6(t, client6, 1, 443, ack, 63, 0))))}
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
				outer := ip6("2001:db8:5::99", nodeAddr6.String(), layers.IPProtocolIPv6, 64)
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(tcp6(t, client6, 40000, 443, ack, 63, 20))))}
			},
			verdict: xdpPass,
		},
	})
}
