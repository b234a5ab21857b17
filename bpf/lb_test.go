package bpf

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

const (
	vip6    = "2001:db8:100::1"
	vip4    = "198.51.100.10" // IPv6 backends: IPv4-in-IPv6
	vip4b   = "198.51.100.11" // IPv4 backends: IPv4-in-IPv4
	client6 = "2001:db8:c0::5"
	client4 = "203.0.113.5"
	router6 = "2001:db8:77::1"
)

var (
	v6Backends = []uint32{1, 2, 3, 4, 5, 6}
	v4Backends = []uint32{11, 12, 13, 14}
)

// programLB installs the test services:
//
//	vip 1  vip6 tcp/443                       IPv6 backends 1-6
//	vip 2  vip6 udp/53, fragments of vip6 udp IPv6 backends 1-6
//	vip 3  vip4 tcp/80                        IPv6 backends 1-6 (4in6)
//	vip 4  vip4b tcp/80                       IPv4 backends 11-14 (IPIP)
//	vip 5  vip6 tcp/22, allow list 2001:db8:c0::/48
//	vip 6  vip6 tcp/8080                      backend 20: next hop without neighbour
//	vip 7  vip4 udp/53, fragments of vip4 udp IPv6 backends 1-6
//	vip 8  vip6 tcp/9000                      backend 21: no route
//
// plus the address entries of vip6, vip4 and vip4b and the node's decap
// addresses.
func programLB(t testing.TB, e *lbEnv) {
	t.Helper()
	for _, id := range v6Backends {
		e.backend(t, id, "2001:db8:be::"+itoa(uint64(id)))
	}
	for i, id := range v4Backends {
		e.backend(t, id, "10.99.0."+itoa(uint64(i+1)))
	}
	e.backend(t, 20, "2001:db8:bad::1")
	e.backend(t, 21, "2001:db8:dead::1")
	a6, a4, a4b := netip.MustParseAddr(vip6), netip.MustParseAddr(vip4), netip.MustParseAddr(vip4b)
	tcp, udp := uint8(layers.IPProtocolTCP), uint8(layers.IPProtocolUDP)
	for _, s := range []struct {
		addr  netip.Addr
		proto uint8
		port  uint16
		vip   uint32
		flags DatapathVipFlags
	}{
		{a6, tcp, 443, 1, 0},
		{a6, udp, 53, 2, 0},
		{a6, udp, 0, 2, DatapathVipFlagsVIP_F_FRAGMENTS_ONLY},
		{a4, tcp, 80, 3, 0},
		{a4b, tcp, 80, 4, 0},
		{a6, tcp, 22, 5, DatapathVipFlagsVIP_F_ALLOWLIST},
		{a6, tcp, 8080, 6, 0},
		{a4, udp, 53, 7, 0},
		{a4, udp, 0, 7, DatapathVipFlagsVIP_F_FRAGMENTS_ONLY},
		{a6, tcp, 9000, 8, 0},
		{a6, 0, 0, 1, 0},
		{a4, 0, 0, 3, 0},
		{a4b, 0, 0, 4, 0},
	} {
		e.must(t, e.lb.SetService(s.addr, s.proto, s.port, s.vip, s.flags))
	}
	e.table(t, 1, spreadTable(v6Backends...))
	e.table(t, 2, spreadTable(6, 5, 4, 3, 2, 1))
	e.table(t, 3, spreadTable(v6Backends...))
	e.table(t, 4, spreadTable(v4Backends...))
	e.table(t, 5, spreadTable(v6Backends...))
	e.table(t, 6, spreadTable(20))
	e.table(t, 7, spreadTable(3, 1, 4, 5, 2, 6))
	e.table(t, 8, spreadTable(21))
	e.must(t, e.lb.Allow(5, netip.MustParsePrefix("2001:db8:c0::/48")))
	e.must(t, e.lb.AddDecapAddr(nodeAddr6))
	e.must(t, e.lb.AddDecapAddr(nodeAddr4))
}

// result is what a case's packet function returns: the input frame, the
// exact expected output (nil: the input unchanged) and the backend whose
// counters must grow (0: none checked).
type result struct {
	in, want []byte
	backend  uint32
}

type lbCase struct {
	name string
	// setup changes the environment before the packet is built.
	setup func(t *testing.T, e *lbEnv)
	// packet builds the input and the expected output; it runs after
	// setup, so it sees the tables as they are then.
	packet    func(t *testing.T, e *lbEnv) result
	noIngress bool // arrive on loopback: a next hop on the uplink means XDP_REDIRECT
	verdict   uint32
	stats     map[DatapathLbStat]uint64
	drops     map[DatapathDropReason]uint64
	vip       uint32 // vip_stats[vip] must grow by the packet (0: not checked)
}

type st = map[DatapathLbStat]uint64
type dr = map[DatapathDropReason]uint64

const (
	ctHit    = DatapathLbStatLB_STAT_CT_HIT
	ctMiss   = DatapathLbStatLB_STAT_CT_MISS
	ctInsert = DatapathLbStatLB_STAT_CT_INSERT
	sTX      = DatapathLbStatLB_STAT_TX
)

// newFlow is the counter delta of a new flow sent out of the uplink.
var newFlow = st{ctMiss: 1, ctInsert: 1, sTX: 1}

// tcp6 builds a TCP/IPv6 packet from client6 (or src) to vip6.
func tcp6(t testing.TB, src string, sport, dport uint16, f tcpFlags, hop uint8, payload int) []byte {
	l3 := ip6(src, vip6, layers.IPProtocolTCP, hop)
	return ipPacket(t, l3, tcpL(l3, sport, dport, f), gopacket.Payload(bytes.Repeat([]byte{0xab}, payload)))
}

func tcp4(t testing.TB, dst string, sport, dport uint16, f tcpFlags, ttl uint8, payload int) []byte {
	l3 := ip4(client4, dst, layers.IPProtocolTCP, ttl)
	return ipPacket(t, l3, tcpL(l3, sport, dport, f), gopacket.Payload(bytes.Repeat([]byte{0xcd}, payload)))
}

var (
	syn = tcpFlags{syn: true}
	ack = tcpFlags{ack: true}
)

// viaGateway is the encapsulated frame sent to the gateway from the uplink.
func (e *lbEnv) viaGateway(t testing.TB, inner []byte, vip uint32, k DatapathFlowKey) ([]byte, uint32) {
	be, id, h := e.expectBackend(t, vip, k)
	return e.encapsulated(t, inner, be, h, gwMAC, uplinkMAC), id
}

func key6(sport, dport uint16, proto layers.IPProtocol) DatapathFlowKey {
	return NewFlowKey(netip.MustParseAddr(client6), netip.MustParseAddr(vip6), sport, dport, uint8(proto))
}

func key4(dst string, sport, dport uint16, proto layers.IPProtocol) DatapathFlowKey {
	return NewFlowKey(netip.MustParseAddr(client4), netip.MustParseAddr(dst), sport, dport, uint8(proto))
}

// tcp6Flow is a forwarded TCP/IPv6 packet of the flow client6:sport ->
// vip6:dport with the expected output computed on the Go side.
func tcp6Flow(sport, dport uint16, f tcpFlags, vip uint32) func(t *testing.T, e *lbEnv) result {
	return func(t *testing.T, e *lbEnv) result {
		in := fromTor(tcp6(t, client6, sport, dport, f, 64, 20))
		want, id := e.viaGateway(t, tcp6(t, client6, sport, dport, f, 63, 20), vip, key6(sport, dport, layers.IPProtocolTCP))
		return result{in: in, want: want, backend: id}
	}
}

func TestLBTable(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)

	// The backend flow 1 (client6:40000 -> vip6:443) gets from the first
	// table; later cases change the table and check it sticks.
	flow1 := key6(40000, 443, layers.IPProtocolTCP)
	_, flow1Backend, _ := e.expectBackend(t, 1, flow1)
	flow1Out := func(t *testing.T, e *lbEnv, f tcpFlags, hop uint8, payload int) []byte {
		h := FlowHash(&flow1, e.settings.HashSeed)
		return e.encapsulated(t, tcp6(t, client6, 40000, 443, f, hop, payload), e.backends[flow1Backend], h, gwMAC, uplinkMAC)
	}
	var otherTable []uint32
	for _, id := range v6Backends {
		if id != flow1Backend {
			otherTable = append(otherTable, id)
		}
	}

	cases := []lbCase{
		{
			name:    "ipv6 tcp syn to a vip: ip6ip6 to the maglev backend",
			packet:  tcp6Flow(40000, 443, syn, 1),
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name:    "ack of the same flow: conntrack hit, same backend",
			packet:  tcp6Flow(40000, 443, ack, 1),
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 1,
		},
		{
			name: "maglev table changed: the established flow keeps its backend",
			setup: func(t *testing.T, e *lbEnv) {
				e.table(t, 1, spreadTable(otherTable...))
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40000, 443, ack, 64, 20)),
					want: flow1Out(t, e, ack, 63, 20), backend: flow1Backend}
			},
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 1,
		},
		{
			name: "maglev table changed: a new flow follows the new table",
			packet: func(t *testing.T, e *lbEnv) result {
				r := tcp6Flow(40001, 443, syn, 1)(t, e)
				if r.backend == flow1Backend {
					t.Fatalf("new table still maps to backend %d", flow1Backend)
				}
				return r
			},
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name: "a syn always takes the table, replacing its conntrack entry",
			packet: func(t *testing.T, e *lbEnv) result {
				r := tcp6Flow(40002, 443, syn, 1)(t, e)
				return r
			},
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name: "udp to a vip: ip6ip6, tracked",
			packet: func(t *testing.T, e *lbEnv) result {
				build := func(hop uint8) []byte {
					l3 := ip6(client6, vip6, layers.IPProtocolUDP, hop)
					return ipPacket(t, l3, udpL(l3, 5353, 53), gopacket.Payload("query"))
				}
				want, id := e.viaGateway(t, build(63), 2, key6(5353, 53, layers.IPProtocolUDP))
				return result{in: fromTor(build(64)), want: want, backend: id}
			},
			verdict: xdpTx, stats: newFlow, vip: 2,
		},
		{
			name: "udp again: conntrack hit",
			packet: func(t *testing.T, e *lbEnv) result {
				build := func(hop uint8) []byte {
					l3 := ip6(client6, vip6, layers.IPProtocolUDP, hop)
					return ipPacket(t, l3, udpL(l3, 5353, 53), gopacket.Payload("query2"))
				}
				want, id := e.viaGateway(t, build(63), 2, key6(5353, 53, layers.IPProtocolUDP))
				return result{in: fromTor(build(64)), want: want, backend: id}
			},
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 2,
		},
		{
			name: "ipv4 vip with ipv6 backends: ipv4-in-ipv6, ttl decremented",
			packet: func(t *testing.T, e *lbEnv) result {
				want, id := e.viaGateway(t, tcp4(t, vip4, 50000, 80, syn, 63, 10), 3, key4(vip4, 50000, 80, layers.IPProtocolTCP))
				return result{in: fromTor(tcp4(t, vip4, 50000, 80, syn, 64, 10)), want: want, backend: id}
			},
			verdict: xdpTx, stats: newFlow, vip: 3,
		},
		{
			name: "ipv4 vip with ipv4 backends: ipv4-in-ipv4",
			packet: func(t *testing.T, e *lbEnv) result {
				want, id := e.viaGateway(t, tcp4(t, vip4b, 50000, 80, syn, 63, 10), 4, key4(vip4b, 50000, 80, layers.IPProtocolTCP))
				return result{in: fromTor(tcp4(t, vip4b, 50000, 80, syn, 64, 10)), want: want, backend: id}
			},
			verdict: xdpTx, stats: newFlow, vip: 4,
		},
		{
			name: "ethernet padding behind a short ipv4 packet is not encapsulated",
			packet: func(t *testing.T, e *lbEnv) result {
				in := fromTor(tcp4(t, vip4b, 50001, 80, syn, 64, 0)) // 54 bytes
				in = append(in, make([]byte, 60-len(in))...)
				want, id := e.viaGateway(t, tcp4(t, vip4b, 50001, 80, syn, 63, 0), 4, key4(vip4b, 50001, 80, layers.IPProtocolTCP))
				return result{in: in, want: want, backend: id}
			},
			verdict: xdpTx, stats: newFlow, vip: 4,
		},
		{
			name:      "next hop on another interface: XDP_REDIRECT",
			packet:    tcp6Flow(40010, 443, syn, 1),
			noIngress: true,
			verdict:   xdpRedirect, stats: st{ctMiss: 1, ctInsert: 1, DatapathLbStatLB_STAT_REDIRECT: 1}, vip: 1,
		},
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
			verdict: xdpTx, stats: st{DatapathLbStatLB_STAT_ICMP_ECHO: 1}, vip: 1,
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
			verdict: xdpTx, stats: st{DatapathLbStatLB_STAT_ICMP_ECHO: 1}, vip: 3,
		},
		{
			name: "icmpv6 too big about a tracked vip flow: relayed to the flow's backend",
			packet: func(t *testing.T, e *lbEnv) result {
				build := func(hop uint8) []byte { return ptb6(t, 40000, hop) }
				h := FlowHash(&flow1, e.settings.HashSeed)
				want := e.encapsulated(t, build(63), e.backends[flow1Backend], h, gwMAC, uplinkMAC)
				return result{in: fromTor(build(64)), want: want, backend: flow1Backend}
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
			name: "icmp frag needed about an ipv4 vip flow: relayed",
			packet: func(t *testing.T, e *lbEnv) result {
				build := func(ttl uint8) []byte {
					quoted := tcp4Rev(t, vip4b, 80, 50000)
					outer := ip4("192.0.2.99", vip4b, layers.IPProtocolICMPv4, ttl)
					return ipPacket(t, outer, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1400}, gopacket.Payload(quoted[:28]))
				}
				be := e.backends[e.tables[4][MaglevSlot(FlowHash(ptrKey(key4(vip4b, 50000, 80, layers.IPProtocolTCP)), e.settings.HashSeed), testTableSize)]]
				k := key4(vip4b, 50000, 80, layers.IPProtocolTCP)
				want := e.encapsulated(t, build(63), be, FlowHash(&k, e.settings.HashSeed), gwMAC, uplinkMAC)
				return result{in: fromTor(build(64)), want: want}
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
			verdict: xdpTx, stats: st{ctHit: 1, DatapathLbStatLB_STAT_PTB_GENERATED: 1}, vip: 1,
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
			verdict: xdpDrop, stats: st{ctHit: 1}, drops: dr{DatapathDropReasonDROP_TOO_BIG: 1}, vip: 4,
		},
		{
			name: "too big with generation disabled: dropped",
			setup: func(t *testing.T, e *lbEnv) {
				s := e.settings
				s.DisablePTB = true
				e.must(t, e.lb.SetSettings(s))
				t.Cleanup(func() { e.must(t, e.lb.SetSettings(e.settings)) })
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40000, 443, ack, 64, 1440))}
			},
			verdict: xdpDrop, stats: st{ctHit: 1}, drops: dr{DatapathDropReasonDROP_TOO_BIG: 1}, vip: 1,
		},
		{
			name: "configured mtu below the link mtu: too big sent for it",
			setup: func(t *testing.T, e *lbEnv) {
				s := e.settings
				s.MTU = 1400
				e.must(t, e.lb.SetSettings(s))
				t.Cleanup(func() { e.must(t, e.lb.SetSettings(e.settings)) })
			},
			packet: func(t *testing.T, e *lbEnv) result {
				ipIn := tcp6(t, client6, 40000, 443, ack, 64, 1340) // 1400 bytes: 1440 encapsulated
				return result{in: fromTor(ipIn), want: frame(torMAC, uplinkMAC, tooBig6(t, ipIn, 1400-40))}
			},
			verdict: xdpTx, stats: st{ctHit: 1, DatapathLbStatLB_STAT_PTB_GENERATED: 1}, vip: 1,
		},
		{
			name:    "ipv6 udp first fragment: hashed without ports",
			packet:  frag6Case(0, true, "first fragment with the udp header"),
			verdict: xdpTx, stats: newFlow, vip: 2,
		},
		{
			name:    "ipv6 later fragment: meets the first one's backend",
			packet:  frag6Case(9, false, "later"),
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 2,
		},
		{
			name:    "ipv4 udp first fragment: hashed without ports",
			packet:  frag4Case(0, true, "first ipv4 fragment, udp header inside"),
			verdict: xdpTx, stats: newFlow, vip: 7,
		},
		{
			name:    "ipv4 later fragment: meets the first one's backend",
			packet:  frag4Case(5, false, "later ipv4"),
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 7,
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
		{
			name: "extension headers are walked to the tcp header",
			packet: func(t *testing.T, e *lbEnv) result {
				build := func(hop uint8) []byte {
					return withExtHeaders(t, tcp6(t, client6, 40020, 443, syn, hop, 8), layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination)
				}
				want, id := e.viaGateway(t, build(63), 1, key6(40020, 443, layers.IPProtocolTCP))
				return result{in: fromTor(build(64)), want: want, backend: id}
			},
			verdict: xdpTx, stats: newFlow, vip: 1,
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
			verdict: xdpDrop, stats: st{}, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
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
			verdict: xdpTx, stats: newFlow, vip: 5,
		},
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
			name: "tunnel packet to another address passes unchanged",
			packet: func(t *testing.T, e *lbEnv) result {
				outer := ip6("2001:db8:5::99", "2001:db8:ff::99", layers.IPProtocolIPv6, 64)
				return result{in: fromTor(ipPacket(t, outer, gopacket.Payload(tcp6(t, client6, 1, 443, ack, 63, 0))))}
			},
			verdict: xdpPass,
		},
		{
			name: "hop limit 1: passed unchanged to the kernel (time exceeded)",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40000, 443, ack, 1, 20))}
			},
			verdict: xdpPass, stats: st{DatapathLbStatLB_STAT_TTL_PASS: 1},
		},
		{
			name: "ipv4 ttl 1: passed unchanged to the kernel",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp4(t, vip4b, 50000, 80, ack, 1, 20))}
			},
			verdict: xdpPass, stats: st{DatapathLbStatLB_STAT_TTL_PASS: 1},
		},
		{
			name: "hop limit 2: forwarded with 1",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40000, 443, ack, 2, 20)), want: flow1Out(t, e, ack, 1, 20), backend: flow1Backend}
			},
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 1,
		},
		{
			name: "next hop without a neighbour: encapsulated and passed to the kernel",
			packet: func(t *testing.T, e *lbEnv) result {
				be, id, h := e.expectBackend(t, 6, key6(40000, 8080, layers.IPProtocolTCP))
				want := e.encapsulated(t, tcp6(t, client6, 40000, 8080, syn, 63, 20), be, h, uplinkMAC, torMAC)
				return result{in: fromTor(tcp6(t, client6, 40000, 8080, syn, 64, 20)), want: want, backend: id}
			},
			verdict: xdpPass, stats: st{ctMiss: 1, ctInsert: 1, DatapathLbStatLB_STAT_NO_NEIGH_PASS: 1}, vip: 6,
		},
		{
			name: "backend without a route: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40000, 9000, syn, 64, 20))}
			},
			verdict: xdpDrop, stats: st{ctMiss: 1, ctInsert: 1}, drops: dr{DatapathDropReasonDROP_FIB: 1}, vip: 8,
		},
		{
			name: "tracked backend removed: the flow moves to the table's choice",
			setup: func(t *testing.T, e *lbEnv) {
				e.must(t, e.lb.DeleteBackend(flow1Backend))
				t.Cleanup(func() { e.backend(t, flow1Backend, e.backends[flow1Backend].String()) })
			},
			packet:  tcp6Flow(40000, 443, ack, 1),
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name: "vip without a maglev table: dropped",
			setup: func(t *testing.T, e *lbEnv) {
				e.must(t, e.lb.DeleteTable(5))
				t.Cleanup(func() { e.table(t, 5, e.tables[5]) })
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40001, 22, syn, 64, 0))}
			},
			verdict: xdpDrop, stats: st{ctMiss: 1}, drops: dr{DatapathDropReasonDROP_NO_BACKEND: 1},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t, e)
			}
			r := tc.packet(t, e)
			before := e.snap(t)
			verdict, out := e.run(t, r.in, !tc.noIngress)
			after := e.snap(t)
			if verdict != tc.verdict {
				t.Errorf("verdict = %d, want %d", verdict, tc.verdict)
			}
			want := r.want
			if want == nil {
				want = r.in
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs:\n got  %x\n want %x\n%s", out, want, diffPackets(out, want))
			}
			checkDeltas(t, before, after, tc.stats, tc.drops)
			if tc.vip != 0 {
				d := after.vips[tc.vip]
				b := before.vips[tc.vip]
				if d.Packets-b.Packets != 1 || d.Bytes-b.Bytes != uint64(len(r.in)) {
					t.Errorf("vip %d counter grew by %d packets / %d bytes, want 1 / %d", tc.vip, d.Packets-b.Packets, d.Bytes-b.Bytes, len(r.in))
				}
			}
			if r.backend != 0 && tc.verdict != xdpDrop {
				d, b := after.backends[r.backend], before.backends[r.backend]
				if d.Packets-b.Packets != 1 || d.Bytes-b.Bytes != uint64(len(r.in)) {
					t.Errorf("backend %d counter grew by %d packets / %d bytes, want 1 / %d", r.backend, d.Packets-b.Packets, d.Bytes-b.Bytes, len(r.in))
				}
			}
		})
	}
}

// TestLBSpreadsFlowsLikeGo sends many new flows and checks every choice
// against the Go-side hash -> slot -> table computation, and that the
// flows do spread over the backends.
func TestLBSpreadsFlowsLikeGo(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	seen := map[uint32]int{}
	for i := range 300 {
		sport := uint16(20000 + i*7)
		r := tcp6Flow(sport, 443, syn, 1)(t, e)
		verdict, out := e.run(t, r.in, true)
		if verdict != xdpTx || !bytes.Equal(out, r.want) {
			t.Fatalf("flow %d: verdict %d, output\n got  %x\n want %x", sport, verdict, out, r.want)
		}
		seen[r.backend]++
	}
	if len(seen) != len(v6Backends) {
		t.Fatalf("300 flows reached backends %v, want all of %v", seen, v6Backends)
	}
	for id, n := range seen {
		if n < 20 {
			t.Errorf("backend %d got %d of 300 flows: poor spread %v", id, n, seen)
		}
	}
}

func ptrKey(k DatapathFlowKey) *DatapathFlowKey { return &k }

// ptb6 is an ICMPv6 packet too big from a router to vip6 quoting a packet
// vip6:443 -> client6:cport.
func ptb6(t testing.TB, cport uint16, hop uint8) []byte {
	qip := ip6(vip6, client6, layers.IPProtocolTCP, 60)
	quoted := ipPacket(t, qip, tcpL(qip, 443, cport, ack), gopacket.Payload(bytes.Repeat([]byte{1}, 100)))
	outer := ip6(router6, vip6, layers.IPProtocolICMPv6, hop)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0)}
	_ = ic.SetNetworkLayerForChecksum(outer)
	return ipPacket(t, outer, ic, gopacket.Payload(append([]byte{0, 0, 0x05, 0x78}, quoted...)))
}

// tcp4Rev is a TCP/IPv4 packet from a VIP back to client4 (as quoted in
// ICMP errors).
func tcp4Rev(t testing.TB, vip string, vport, cport uint16) []byte {
	l3 := ip4(vip, client4, layers.IPProtocolTCP, 60)
	return ipPacket(t, l3, tcpL(l3, vport, cport, ack), gopacket.Payload("data"))
}

// tooBig6 is the ICMPv6 packet too big the LB answers ipIn with.
func tooBig6(t testing.TB, ipIn []byte, mtu uint32) []byte {
	l3 := ip6(vip6, client6, layers.IPProtocolICMPv6, 64)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0)}
	_ = ic.SetNetworkLayerForChecksum(l3)
	body := binary.BigEndian.AppendUint32(nil, mtu)
	return ipPacket(t, l3, ic, gopacket.Payload(append(body, ipIn[:512]...)))
}

// fragNeeded4 is the ICMP fragmentation needed the LB answers ipIn with.
func fragNeeded4(t testing.TB, ipIn []byte, vip string, mtu uint16) []byte {
	l3 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: net.ParseIP(vip).To4(), DstIP: net.ParseIP(client4).To4()}
	return ipPacket(t, l3, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: mtu}, gopacket.Payload(ipIn[:512]))
}

// frag6Case builds a fragment of a UDP datagram client6:5353 -> vip6:53
// (offset in 8-byte units); the expected backend is the 3-tuple's.
func frag6Case(offset uint16, more bool, payload string) func(t *testing.T, e *lbEnv) result {
	return func(t *testing.T, e *lbEnv) result {
		build := func(hop uint8) []byte {
			l3 := ip6(client6, vip6, layers.IPProtocolIPv6Fragment, hop)
			fh := &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: offset, MoreFragments: more, Identification: 77}
			if offset == 0 {
				u := &layers.UDP{SrcPort: 5353, DstPort: 53, Length: 200, Checksum: 0x1234}
				return ipPacket(t, l3, fh, rawUDP(u), gopacket.Payload(payload))
			}
			return ipPacket(t, l3, fh, gopacket.Payload(payload))
		}
		want, id := e.viaGateway(t, build(63), 2, key6(0, 0, layers.IPProtocolUDP))
		return result{in: fromTor(build(64)), want: want, backend: id}
	}
}

func frag4Case(offset uint16, more bool, payload string) func(t *testing.T, e *lbEnv) result {
	return func(t *testing.T, e *lbEnv) result {
		build := func(ttl uint8) []byte {
			l3 := ip4(client4, vip4, layers.IPProtocolUDP, ttl)
			l3.Flags, l3.FragOffset, l3.Id = 0, offset, 99
			if more {
				l3.Flags = layers.IPv4MoreFragments
			}
			if offset == 0 {
				u := &layers.UDP{SrcPort: 5353, DstPort: 53, Length: 200, Checksum: 0x1234}
				return ipPacket(t, l3, rawUDP(u), gopacket.Payload(payload))
			}
			return ipPacket(t, l3, gopacket.Payload(payload))
		}
		want, id := e.viaGateway(t, build(63), 7, key4(vip4, 0, 0, layers.IPProtocolUDP))
		return result{in: fromTor(build(64)), want: want, backend: id}
	}
}

// rawUDP serializes a UDP header as given (a fragment's length and checksum
// cover the whole datagram, which gopacket cannot compute).
func rawUDP(u *layers.UDP) gopacket.Payload {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b[0:], uint16(u.SrcPort))
	binary.BigEndian.PutUint16(b[2:], uint16(u.DstPort))
	binary.BigEndian.PutUint16(b[4:], u.Length)
	binary.BigEndian.PutUint16(b[6:], u.Checksum)
	return b
}

// withExtHeaders inserts 8-byte extension headers (PadN-filled) of the
// given types between the IPv6 header and the payload of p.
func withExtHeaders(t testing.TB, p []byte, chain ...layers.IPProtocol) []byte {
	t.Helper()
	out := append([]byte(nil), p[:40]...)
	next := p[6]
	out[6] = byte(chain[0])
	for i := range chain {
		nh := next
		if i+1 < len(chain) {
			nh = byte(chain[i+1])
		}
		out = append(out, nh, 0, 1, 4, 0, 0, 0, 0) // PadN of 4: 8 bytes
	}
	out = append(out, p[40:]...)
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
	return out
}

// diffPackets decodes both frames for a readable failure message.
func diffPackets(got, want []byte) string {
	g := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
	w := gopacket.NewPacket(want, layers.LayerTypeEthernet, gopacket.Default)
	return "got:\n" + g.Dump() + "\nwant:\n" + w.Dump()
}
