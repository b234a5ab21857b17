package bpf

import (
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestLBICMP: echo requests to VIPs are answered; ICMP errors about a VIP
// flow go to that flow's backend; packets too big to encapsulate get a
// too-big message back.
func TestLBICMP(t *testing.T) {
	flow1 := key6(40000, 443, layers.IPProtocolTCP)
	runLBCases(t, []lbCase{
		{
			name: "icmpv6 echo request to a vip: answered",
			packet: func(t *testing.T, e *lbEnv) result {
				req := ip6(client6, vip6, layers.IPProtocolICMPv6, 61)
				ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
				_ = ic.SetNetworkLayerForChecksum(req)
				in := fromTor(ipPacket(t, req, ic, &layers.ICMPv6Echo{Identifier: 7, SeqNumber: 9}, gopacket.Payload("ping6")))
				rep := ip6(vip6, client6, layers.IPProtocolICMPv6, 64)
				ic = &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoReply, 0)}
				_ = ic.SetNetworkLayerForChecksum(rep)
				want := frame(torMAC, uplinkMAC, ipPacket(t, rep, ic, &layers.ICMPv6Echo{Identifier: 7, SeqNumber: 9}, gopacket.Payload("ping6")))
				return result{in: in, want: want}
			},
			verdict: xdpTx, stats: st{DatapathLbStatLB_STAT_ICMP_ECHO: 1}, // no vip_stats: the address entry has no vip id
		},
		{
			name: "icmp echo request to an ipv4 vip: answered",
			packet: func(t *testing.T, e *lbEnv) result {
				req := ip4(client4, vip4, layers.IPProtocolICMPv4, 50)
				in := fromTor(ipPacket(t, req, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 3, Seq: 4}, gopacket.Payload("ping4")))
				rep := ip4(vip4, client4, layers.IPProtocolICMPv4, 64)
				want := frame(torMAC, uplinkMAC, ipPacket(t, rep, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: 3, Seq: 4}, gopacket.Payload("ping4")))
				return result{in: in, want: want}
			},
			verdict: xdpTx, stats: st{DatapathLbStatLB_STAT_ICMP_ECHO: 1}, // no vip_stats: the address entry has no vip id
		},
		{
			// FuzzXDP found it (testdata/fuzz/FuzzXDP/c710a4fc323018b7):
			// the reply went back with its ICMP header outside its IP length.
			name: "icmpv6 echo request with payload length 1, its ICMP header in padding: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				req := ip6(client6, vip6, layers.IPProtocolICMPv6, 61)
				ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
				_ = ic.SetNetworkLayerForChecksum(req)
				p := ipPacket(t, req, ic, &layers.ICMPv6Echo{Identifier: 7, SeqNumber: 9})
				binary.BigEndian.PutUint16(p[4:], 1)
				return result{in: fromTor(p)}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "icmp echo request with total length 24, its ICMP header in padding: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				req := ip4(client4, vip4, layers.IPProtocolICMPv4, 50)
				p := ipPacket(t, req, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 3, Seq: 4})
				binary.BigEndian.PutUint16(p[2:], 24)
				binary.BigEndian.PutUint16(p[10:], 0)
				binary.BigEndian.PutUint16(p[10:], ^csumSum(p[:20]))
				return result{in: fromTor(p)}
			},
			verdict: xdpDrop, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "icmpv6 too big about a tracked vip flow: relayed to the flow's backend",
			setup: func(t *testing.T, e *lbEnv) {
				e.send(t, tcp6Flow(40000, 443, syn, 1)(t, e))
				e.send(t, tcp6Flow(40000, 443, ack, 1)(t, e)) // the first ACK tracks the flow
				e.withTable(t, 1, tableWithout(e.initialBackend(t, 1, flow1)))
			},
			packet: func(t *testing.T, e *lbEnv) result {
				id := e.initialBackend(t, 1, flow1)
				want := e.encapsulated(t, ptb6(t, 40000, 63), e.backends[id], FlowHash(&flow1, e.settings.HashSeed), gwMAC, uplinkMAC)
				return result{in: fromTor(ptb6(t, 40000, 64)), want: want, backend: id}
			},
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1, DatapathLbStatLB_STAT_PTB_RELAYED: 1}, vip: 1,
		},
		{
			name: "icmpv6 too big about an untracked vip flow: maglev backend, nothing tracked",
			packet: func(t *testing.T, e *lbEnv) result {
				want, id := e.viaGateway(t, ptb6(t, 45000, 63), 1, key6(45000, 443, layers.IPProtocolTCP))
				return result{in: fromTor(ptb6(t, 45000, 64)), want: want, backend: id}
			},
			verdict: xdpTx, stats: st{ctMiss: 1, sTX: 1, DatapathLbStatLB_STAT_PTB_RELAYED: 1}, vip: 1,
		},
		{
			name: "icmp frag needed about a tracked ipv4 vip flow: relayed",
			setup: func(t *testing.T, e *lbEnv) {
				e.send(t, result{in: fromTor(tcp4(t, vip4b, 50000, 80, syn, 64, 10))})
				e.send(t, result{in: fromTor(tcp4(t, vip4b, 50000, 80, ack, 64, 10))}) // tracked from here
			},
			packet: func(t *testing.T, e *lbEnv) result {
				build := func(ttl uint8) []byte {
					quoted := tcp4Rev(t, vip4b, 80, 50000)
					outer := ip4("192.0.2.99", vip4b, layers.IPProtocolICMPv4, ttl)
					return ipPacket(t, outer, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1400}, gopacket.Payload(quoted[:28]))
				}
				want, id := e.viaGateway(t, build(63), 4, key4(vip4b, 50000, 80, layers.IPProtocolTCP))
				return result{in: fromTor(build(64)), want: want, backend: id}
			},
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1, DatapathLbStatLB_STAT_PTB_RELAYED: 1}, vip: 4,
		},
		{
			name: "icmpv6 too big about a flow of another address: passed",
			packet: func(t *testing.T, e *lbEnv) result {
				quoted := ipPacket(t, ip6("2001:db8:1::1", client6, layers.IPProtocolTCP, 60))
				outer := ip6(router6, vip6, layers.IPProtocolICMPv6, 64)
				ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0)}
				_ = ic.SetNetworkLayerForChecksum(outer)
				return result{in: fromTor(ipPacket(t, outer, ic, gopacket.Payload(append([]byte{0, 0, 5, 0x78}, quoted...))))}
			},
			verdict: xdpPass,
		},
		{
			name: "too big to encapsulate: icmpv6 packet too big to the client",
			packet: func(t *testing.T, e *lbEnv) result {
				ipIn := tcp6(t, client6, 40000, 443, ack, 64, 1440) // 1500 bytes: 1540 encapsulated
				return result{in: fromTor(ipIn), want: frame(torMAC, uplinkMAC, tooBig6(t, ipIn, 1500-40))}
			},
			verdict: xdpTx, stats: st{ctMiss: 1, ctInsert: 1, DatapathLbStatLB_STAT_PTB_GENERATED: 1}, vip: 1,
		},
		{
			name: "too big ipv4 with DF: icmp fragmentation needed to the client",
			packet: func(t *testing.T, e *lbEnv) result {
				ipIn := tcp4(t, vip4b, 50002, 80, ack, 64, 1460) // 1500 bytes: 1520 in IPv4
				return result{in: fromTor(ipIn), want: frame(torMAC, uplinkMAC, fragNeeded4(t, ipIn, vip4b, 1500-20))}
			},
			verdict: xdpTx, stats: st{ctMiss: 1, ctInsert: 1, DatapathLbStatLB_STAT_PTB_GENERATED: 1}, vip: 4,
		},
		{
			name: "too big ipv4 without DF: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				l3 := ip4(client4, vip4b, layers.IPProtocolTCP, 64)
				l3.Flags = 0
				return result{in: fromTor(ipPacket(t, l3, tcpL(l3, 50002, 80, ack), gopacket.Payload(make([]byte, 1460))))}
			},
			verdict: xdpDrop, stats: st{ctMiss: 1, ctInsert: 1}, drops: dr{DatapathDropReasonDROP_TOO_BIG: 1}, vip: 4,
		},
		{
			name: "too big with generation disabled: dropped",
			setup: func(t *testing.T, e *lbEnv) {
				s := e.settings
				s.DisablePTB = true
				e.withSettings(t, s)
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40000, 443, ack, 64, 1440))}
			},
			verdict: xdpDrop, stats: st{ctMiss: 1, ctInsert: 1}, drops: dr{DatapathDropReasonDROP_TOO_BIG: 1}, vip: 1,
		},
		{
			name: "configured mtu below the link mtu: too big sent for it",
			setup: func(t *testing.T, e *lbEnv) {
				s := e.settings
				s.MTU = 1400
				e.withSettings(t, s)
			},
			packet: func(t *testing.T, e *lbEnv) result {
				ipIn := tcp6(t, client6, 40000, 443, ack, 64, 1340) // 1400 bytes: 1440 encapsulated
				return result{in: fromTor(ipIn), want: frame(torMAC, uplinkMAC, tooBig6(t, ipIn, 1400-40))}
			},
			verdict: xdpTx, stats: st{ctMiss: 1, ctInsert: 1, DatapathLbStatLB_STAT_PTB_GENERATED: 1}, vip: 1,
		},
	})
}
