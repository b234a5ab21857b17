package bpf

import (
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestLBFragments: every fragment of a datagram, the first included, is
// hashed without ports and meets one backend.
func TestLBFragments(t *testing.T) {
	runLBCases(t, []lbCase{
		{
			name:    "ipv6 udp first fragment: hashed without ports",
			packet:  frag6Case(0, true, "first fragment with the udp header"),
			verdict: xdpTx, stats: newFlow, vip: 2,
		},
		{
			name:    "ipv6 later fragment: meets the first one's backend",
			setup:   func(t *testing.T, e *lbEnv) { e.send(t, frag6Case(0, true, "first")(t, e)) },
			packet:  frag6Case(9, false, "later"),
			verdict: xdpTx, stats: st{ctHit: 1, ctPromo: 1, sTX: 1}, vip: 2,
		},
		{
			name:    "ipv4 udp first fragment: hashed without ports",
			packet:  frag4Case(0, true, "first ipv4 fragment, udp header inside"),
			verdict: xdpTx, stats: newFlow, vip: 7,
		},
		{
			name:    "ipv4 later fragment: meets the first one's backend",
			setup:   func(t *testing.T, e *lbEnv) { e.send(t, frag4Case(0, true, "first ipv4")(t, e)) },
			packet:  frag4Case(5, false, "later ipv4"),
			verdict: xdpTx, stats: st{ctHit: 1, ctPromo: 1, sTX: 1}, vip: 7,
		},
		{
			name: "fragment to a vip without a fragment service: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				l3 := ip4(client4, vip4b, layers.IPProtocolUDP, 64)
				l3.Flags, l3.FragOffset = 0, 20
				return result{in: fromTor(ipPacket(t, l3, gopacket.Payload("later fragment")))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_FRAGMENT: 1},
		},
	})
}

// TestLBMalformed: packets to a VIP the stage cannot read are dropped and
// counted by reason, never forwarded cut or guessed.
func TestLBMalformed(t *testing.T) {
	runLBCases(t, []lbCase{
		{
			name: "extension headers are walked to the tcp header",
			packet: func(t *testing.T, e *lbEnv) result {
				build := func(hop uint8) []byte {
					return withExtHeaders(t, tcp6(t, client6, 40020, 443, syn, hop, 8), layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination)
				}
				want, id := e.viaGateway(t, build(63), 1, key6(40020, 443, layers.IPProtocolTCP))
				return result{in: fromTor(build(64)), want: want, backend: id}
			},
			verdict: xdpTx, stats: newSYN, vip: 1,
		},
		{
			name: "extension header chain too long: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				var chain []layers.IPProtocol
				for range 7 {
					chain = append(chain, layers.IPProtocolIPv6Destination)
				}
				return result{in: fromTor(withExtHeaders(t, tcp6(t, client6, 40021, 443, syn, 64, 8), chain...))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_EXT_HEADERS: 1},
		},
		{
			name: "truncated tcp header to a vip: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(ipPacket(t, ip6(client6, vip6, layers.IPProtocolTCP, 64), gopacket.Payload([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "ip length beyond the frame: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				p := tcp6(t, client6, 40000, 443, ack, 64, 20)
				binary.BigEndian.PutUint16(p[4:], uint16(len(p)-40+100))
				return result{in: fromTor(p)}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "ipv6 payload length 0 with a payload (jumbogram): dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				p := tcp6(t, client6, 40000, 443, ack, 64, 20)
				p[4], p[5] = 0, 0
				return result{in: fromTor(p)}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "no service on the vip port: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				l3 := ip6(client6, vip6, layers.IPProtocolUDP, 64)
				return result{in: fromTor(ipPacket(t, l3, udpL(l3, 1000, 9999), gopacket.Payload("x")))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_NO_SERVICE: 1},
		},
		{
			name: "unknown protocol to a vip address: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(ipPacket(t, ip6(client6, vip6, 253, 64), gopacket.Payload("experimental")))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_NO_SERVICE: 1},
		},
	})
}

// TestLBFilter: what is not for a VIP passes untouched; allow lists.
func TestLBFilter(t *testing.T) {
	runLBCases(t, []lbCase{
		{
			name: "traffic not for a vip passes unchanged",
			packet: func(t *testing.T, e *lbEnv) result {
				l3 := ip6(client6, "2001:db8:1234::1", layers.IPProtocolTCP, 64)
				return result{in: fromTor(ipPacket(t, l3, tcpL(l3, 1, 443, syn)))}
			},
			verdict: xdpPass,
		},
		{
			name: "ipv4 traffic not for a vip passes unchanged",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp4(t, "198.51.100.99", 1, 80, syn, 64, 3))}
			},
			verdict: xdpPass,
		},
		{
			name: "vlan-tagged vip traffic passes unchanged",
			packet: func(t *testing.T, e *lbEnv) result {
				in := fromTor(tcp6(t, client6, 40000, 443, ack, 64, 4))
				tagged := append(append(append([]byte(nil), in[:12]...), 0x81, 0x00, 0x00, 0x64), in[12:]...)
				return result{in: tagged}
			},
			verdict: xdpPass,
		},
		{
			name: "source outside the allow list: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, "2001:db8:dd::1", 40000, 22, syn, 64, 0))}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_NOT_ALLOWED: 1},
		},
		{
			name:    "source inside the allow list: forwarded",
			packet:  tcp6Flow(40000, 22, syn, 5),
			verdict: xdpTx, stats: newSYN, vip: 5,
		},
	})
}
