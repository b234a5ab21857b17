package bpf

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// parseCase is one frame at an edge of the parser's fast path (parse_fast,
// parse.h): the frames it takes and the first ones it leaves to the
// general parser must come out as the general parser alone made them -
// the same verdict, output bytes, family counted, events and drops.
type parseCase struct {
	name    string
	packet  func(t *testing.T, e *lbEnv) result
	verdict uint32
	family  DatapathFamily
	stats   map[DatapathLbStat]uint64
	drops   map[DatapathDropReason]uint64
}

// TestParseFastPath: untagged IPv6 without extension headers and IPv4
// without options, unfragmented, with a whole TCP or UDP header take the
// fast path; every way out of it (a cut header, an IP length beyond the
// frame or below the header, options, a fragment, another version) gives
// what the general parser gives.
func TestParseFastPath(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	v6, v4, bad := DatapathFamilyFAMILY_IPV6, DatapathFamilyFAMILY_IPV4, DatapathFamilyFAMILY_MALFORMED
	cases := []parseCase{
		{
			name: "ipv6 udp to a service: fast path, forwarded",
			packet: func(t *testing.T, e *lbEnv) result {
				build := func(hop uint8) []byte {
					l3 := ip6(client6, vip6, layers.IPProtocolUDP, hop)
					return ipPacket(t, l3, udpL(l3, 40100, 53), gopacket.Payload("query"))
				}
				want, id := e.viaGateway(t, build(63), 2, key6(40100, 53, layers.IPProtocolUDP))
				return result{in: fromTor(build(64)), want: want, backend: id}
			},
			verdict: xdpTx, family: v6, stats: newFlow,
		},
		{
			name: "ipv6 udp header cut: general parser, dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(ipPacket(t, ip6(client6, vip6, layers.IPProtocolUDP, 64), gopacket.Payload([]byte{0x9c, 0xa4, 0, 53})))}
			},
			verdict: xdpDrop, family: v6, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "ipv6 version nibble not 6: malformed, passed",
			packet: func(t *testing.T, e *lbEnv) result {
				p := tcp6(t, client6, 40101, 443, ack, 64, 20)
				p[0] = 0x50 | p[0]&0x0f
				return result{in: fromTor(p)}
			},
			verdict: xdpPass, family: bad,
		},
		{
			name: "ipv6 ip length beyond the frame by one byte: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				p := tcp6(t, client6, 40102, 443, ack, 64, 20)
				binary.BigEndian.PutUint16(p[4:], uint16(len(p)-40+1))
				return result{in: fromTor(p)}
			},
			verdict: xdpDrop, family: v6, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			// 40 + 65,535 does not fit the 16 bits struct packet keeps: the
			// length must be compared before it wraps to 39, or the frame
			// would pass as whole and be cut to 53 bytes and forwarded.
			name: "ipv6 payload length 65,535 on a short frame: fast path, dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				p := tcp6(t, client6, 40103, 443, ack, 64, 20)
				binary.BigEndian.PutUint16(p[4:], 0xffff)
				return result{in: fromTor(p)}
			},
			verdict: xdpDrop, family: v6, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "ipv6 payload length 65,496 behind a hop-by-hop header: general parser, dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				p := withExtHeaders(t, tcp6(t, client6, 40104, 443, ack, 64, 20), layers.IPProtocolIPv6HopByHop)
				binary.BigEndian.PutUint16(p[4:], 65496)
				return result{in: fromTor(p)}
			},
			verdict: xdpDrop, family: v6, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "ipv4 tcp: fast path, forwarded",
			packet: func(t *testing.T, e *lbEnv) result {
				want, id := e.viaGateway(t, tcp4(t, vip4b, 50100, 80, syn, 63, 10), 4, key4(vip4b, 50100, 80, layers.IPProtocolTCP))
				return result{in: fromTor(tcp4(t, vip4b, 50100, 80, syn, 64, 10)), want: want, backend: id}
			},
			verdict: xdpTx, family: v4, stats: newSYN,
		},
		{
			name: "ipv4 udp: fast path, forwarded",
			packet: func(t *testing.T, e *lbEnv) result {
				build := func(ttl uint8) []byte {
					l3 := ip4(client4, vip4, layers.IPProtocolUDP, ttl)
					return ipPacket(t, l3, udpL(l3, 50101, 53), gopacket.Payload("query"))
				}
				want, id := e.viaGateway(t, build(63), 7, key4(vip4, 50101, 53, layers.IPProtocolUDP))
				return result{in: fromTor(build(64)), want: want, backend: id}
			},
			verdict: xdpTx, family: v4, stats: newFlow,
		},
		{
			name: "ipv4 with options: general parser, forwarded",
			packet: func(t *testing.T, e *lbEnv) result {
				nops := []byte{1, 1, 1, 1}
				want, id := e.viaGateway(t, withIPv4Options(tcp4(t, vip4b, 50102, 80, syn, 63, 10), nops), 4,
					key4(vip4b, 50102, 80, layers.IPProtocolTCP))
				return result{in: fromTor(withIPv4Options(tcp4(t, vip4b, 50102, 80, syn, 64, 10), nops)), want: want, backend: id}
			},
			verdict: xdpTx, family: v4, stats: newSYN,
		},
		{
			name: "ipv4 tcp header cut: general parser, dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				l3 := ip4(client4, vip4b, layers.IPProtocolTCP, 64)
				return result{in: fromTor(ipPacket(t, l3, gopacket.Payload(bytes.Repeat([]byte{7}, 19))))}
			},
			verdict: xdpDrop, family: v4, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "ipv4 total length beyond the frame: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				p := tcp4(t, vip4b, 50103, 80, ack, 64, 20)
				binary.BigEndian.PutUint16(p[2:], uint16(len(p)+1))
				return result{in: fromTor(p)}
			},
			verdict: xdpDrop, family: v4, drops: dr{DatapathDropReasonDROP_MALFORMED: 1},
		},
		{
			name: "ipv4 total length below the header: malformed, passed",
			packet: func(t *testing.T, e *lbEnv) result {
				p := tcp4(t, vip4b, 50104, 80, ack, 64, 20)
				binary.BigEndian.PutUint16(p[2:], 19)
				return result{in: fromTor(p)}
			},
			verdict: xdpPass, family: bad,
		},
		{
			name: "ipv4 more-fragments flag: general parser, fragment without a service, dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				l3 := ip4(client4, vip4b, layers.IPProtocolTCP, 64)
				l3.Flags = layers.IPv4MoreFragments
				return result{in: fromTor(ipPacket(t, l3, tcpL(l3, 50105, 80, syn)))}
			},
			verdict: xdpDrop, family: v4, drops: dr{DatapathDropReasonDROP_FRAGMENT: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.resetFlows(t)
			r := tc.packet(t, e)
			famBefore := pipelineCounters(t, e.objs.Pipeline.Stats).Family
			before := e.snap(t)
			verdict, out := e.run(t, r.in, true)
			after := e.snap(t)
			famAfter := pipelineCounters(t, e.objs.Pipeline.Stats).Family
			checkOutput(t, verdict, out, tc.verdict, r.expected())
			for f := range famAfter {
				got := famAfter[f].Packets - famBefore[f].Packets
				if wantN := uint64(0); DatapathFamily(f) == tc.family {
					wantN = 1
					if got != wantN || famAfter[f].Bytes-famBefore[f].Bytes != uint64(len(r.in)) {
						t.Errorf("family %d: %d packets, %d bytes; want 1 packet of %d bytes", f, got,
							famAfter[f].Bytes-famBefore[f].Bytes, len(r.in))
					}
				} else if got != wantN {
					t.Errorf("family %d counted %d packets, want none (the packet is family %d)", f, got, tc.family)
				}
			}
			checkDeltas(t, before, after, tc.stats, tc.drops)
			if tc.verdict == xdpTx {
				checkTraffic(t, "backend", r.backend, before.backends, after.backends, len(r.in))
			}
		})
	}
}

// withIPv4Options inserts opts (a multiple of 4 bytes) behind p's 20-byte
// IPv4 header and fixes its header length, total length and checksum.
func withIPv4Options(p, opts []byte) []byte {
	out := append(append(append([]byte(nil), p[:20]...), opts...), p[20:]...)
	out[0] = 0x40 | byte((20+len(opts))/4)
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	out[10], out[11] = 0, 0
	var sum uint32
	for i := 0; i < 20+len(opts); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(out[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(out[10:], ^uint16(sum))
	return out
}
