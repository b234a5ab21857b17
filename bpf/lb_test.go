package bpf

import (
	"bytes"
	"encoding/binary"
	"maps"
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
// plus the address entries of vip6, vip4 and vip4b, the node's decap
// addresses and its local addresses (testLocalAddrs).
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
	} {
		e.must(t, e.lb.SetService(s.addr, s.proto, s.port, s.vip, s.flags))
	}
	for _, a := range []netip.Addr{a6, a4, a4b} {
		e.must(t, e.lb.SetAddress(a))
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
	e.must(t, e.node.SetAddrs([]netip.Addr{nodeAddr6, nodeAddr4}))
	e.must(t, e.node.SetLocalAddrs(testLocalAddrs))
	e.initial = maps.Clone(e.tables)
}

// result is what a case's packet function returns: the input frame, the
// exact expected output (nil: the input unchanged) and the backend whose
// counters must grow (0: none checked).
type result struct {
	in, want []byte
	backend  uint32
}

// expected is the frame that must come out: want, or the input unchanged.
func (r result) expected() []byte {
	if r.want == nil {
		return r.in
	}
	return r.want
}

// checkOutput compares a run's verdict and output frame with a case's.
func checkOutput(t testing.TB, verdict uint32, out []byte, wantVerdict uint32, want []byte) {
	t.Helper()
	if verdict != wantVerdict {
		t.Errorf("verdict = %d, want %d", verdict, wantVerdict)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("output differs:\n got  %x\n want %x\n%s", out, want, diffPackets(out, want))
	}
}

// lbCase is one row of a packet table: the state it needs, one packet, and
// what must come out of the pipeline. Cases are independent: each starts
// with conntrack and the next-hop cache empty and the services of
// programLB installed; setup adds what the case needs (a table change
// restored at its end, packets that make a flow established, ...), so any
// case runs alone with -run.
type lbCase struct {
	name string
	// setup prepares the environment before the packet is built: it may
	// change tables or settings (restored by t.Cleanup, see withTable and
	// withSettings) and send earlier packets of the flow (send).
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
	ctSyn    = DatapathLbStatLB_STAT_CT_SYN
	ctPromo  = DatapathLbStatLB_STAT_CT_PROMOTE
	ctSwept  = DatapathLbStatLB_STAT_CT_SWEPT
	ctElse   = DatapathLbStatLB_STAT_CT_HIT_ELSEWHERE
	sTX      = DatapathLbStatLB_STAT_TX
)

// runLBCases runs a packet table against one environment with programLB's
// services: verdict, exact output bytes, every counter's delta, and the
// VIP's and backend's traffic counters.
func runLBCases(t *testing.T, cases []lbCase) {
	t.Helper()
	e := newLBEnv(t)
	programLB(t, e)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.resetFlows(t)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			r := tc.packet(t, e)
			before := e.snap(t)
			verdict, out := e.run(t, r.in, !tc.noIngress)
			after := e.snap(t)
			checkOutput(t, verdict, out, tc.verdict, r.expected())
			checkDeltas(t, before, after, tc.stats, tc.drops)
			checkTraffic(t, "vip", tc.vip, before.vips, after.vips, len(r.in))
			if tc.verdict != xdpDrop {
				checkTraffic(t, "backend", r.backend, before.backends, after.backends, len(r.in))
			}
		})
	}
}

// checkTraffic checks that counter id (0: not checked) grew by one packet
// of n bytes.
func checkTraffic(t *testing.T, what string, id uint32, before, after map[uint32]DatapathCounter, n int) {
	t.Helper()
	if id == 0 {
		return
	}
	a, b := after[id], before[id]
	if a.Packets-b.Packets != 1 || a.Bytes-b.Bytes != uint64(n) {
		t.Errorf("%s %d counter grew by %d packets / %d bytes, want 1 / %d", what, id, a.Packets-b.Packets, a.Bytes-b.Bytes, n)
	}
}

// newFlow is the counter delta of a new flow's first packet that is not a
// TCP SYN (tracked from it on) sent out of the uplink; newSYN that of a
// TCP SYN (balanced by the table, nothing tracked).
var (
	newFlow = st{ctMiss: 1, ctInsert: 1, sTX: 1}
	newSYN  = st{ctMiss: 1, ctSyn: 1, sTX: 1}
)

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
// vip6:dport with the expected output computed on the Go side (the
// backend of the VIP's current table).
func tcp6Flow(sport, dport uint16, f tcpFlags, vip uint32) func(t *testing.T, e *lbEnv) result {
	return tcp6FlowHop(sport, dport, f, 64, vip)
}

// tcp6FlowHop is tcp6Flow arriving with hop limit hop.
func tcp6FlowHop(sport, dport uint16, f tcpFlags, hop uint8, vip uint32) func(t *testing.T, e *lbEnv) result {
	return func(t *testing.T, e *lbEnv) result {
		in := fromTor(tcp6(t, client6, sport, dport, f, hop, 20))
		want, id := e.viaGateway(t, tcp6(t, client6, sport, dport, f, hop-1, 20), vip, key6(sport, dport, layers.IPProtocolTCP))
		return result{in: in, want: want, backend: id}
	}
}

// tcp6To is tcp6Flow to a given backend (a tracked flow's) instead of the
// table's choice.
func tcp6To(sport, dport uint16, f tcpFlags, backend uint32) func(t *testing.T, e *lbEnv) result {
	return func(t *testing.T, e *lbEnv) result {
		k := key6(sport, dport, layers.IPProtocolTCP)
		want := e.encapsulated(t, tcp6(t, client6, sport, dport, f, 63, 20), e.backends[backend],
			FlowHash(&k, e.settings.HashSeed), gwMAC, uplinkMAC)
		return result{in: fromTor(tcp6(t, client6, sport, dport, f, 64, 20)), want: want, backend: backend}
	}
}

// tableWithout is a table spreading vip 1's backends except skip.
func tableWithout(skip uint32) []uint32 {
	var ids []uint32
	for _, id := range v6Backends {
		if id != skip {
			ids = append(ids, id)
		}
	}
	return spreadTable(ids...)
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
