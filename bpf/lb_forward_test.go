package bpf

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestLBForward: new flows to each kind of VIP are encapsulated to the
// table's backend and sent to the next hop; hop limits, padding, egress
// choice and next-hop failures.
func TestLBForward(t *testing.T) {
	runLBCases(t, []lbCase{
		{
			name:    "ipv6 tcp syn to a vip: ip6ip6 to the maglev backend",
			packet:  tcp6Flow(40000, 443, syn, 1),
			verdict: xdpTx, stats: newSYN, vip: 1,
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
			name: "ipv4 vip with ipv6 backends: ipv4-in-ipv6, ttl decremented",
			packet: func(t *testing.T, e *lbEnv) result {
				want, id := e.viaGateway(t, tcp4(t, vip4, 50000, 80, syn, 63, 10), 3, key4(vip4, 50000, 80, layers.IPProtocolTCP))
				return result{in: fromTor(tcp4(t, vip4, 50000, 80, syn, 64, 10)), want: want, backend: id}
			},
			verdict: xdpTx, stats: newSYN, vip: 3,
		},
		{
			name: "ipv4 vip with ipv4 backends: ipv4-in-ipv4",
			packet: func(t *testing.T, e *lbEnv) result {
				want, id := e.viaGateway(t, tcp4(t, vip4b, 50000, 80, syn, 63, 10), 4, key4(vip4b, 50000, 80, layers.IPProtocolTCP))
				return result{in: fromTor(tcp4(t, vip4b, 50000, 80, syn, 64, 10)), want: want, backend: id}
			},
			verdict: xdpTx, stats: newSYN, vip: 4,
		},
		{
			name: "ethernet padding behind a short ipv4 packet is not encapsulated",
			packet: func(t *testing.T, e *lbEnv) result {
				in := fromTor(tcp4(t, vip4b, 50001, 80, syn, 64, 0)) // 54 bytes
				in = append(in, make([]byte, 60-len(in))...)
				want, id := e.viaGateway(t, tcp4(t, vip4b, 50001, 80, syn, 63, 0), 4, key4(vip4b, 50001, 80, layers.IPProtocolTCP))
				return result{in: in, want: want, backend: id}
			},
			verdict: xdpTx, stats: newSYN, vip: 4,
		},
		{
			name:      "next hop on another interface: XDP_REDIRECT",
			packet:    tcp6Flow(40010, 443, syn, 1),
			noIngress: true,
			verdict:   xdpRedirect, stats: st{ctMiss: 1, ctSyn: 1, DatapathLbStatLB_STAT_REDIRECT: 1}, vip: 1,
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
			name:    "hop limit 2: forwarded with 1",
			packet:  tcp6FlowHop(40000, 443, ack, 2, 1),
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name: "next hop without a neighbour: encapsulated and passed to the kernel",
			packet: func(t *testing.T, e *lbEnv) result {
				be, id, h := e.expectBackend(t, 6, key6(40000, 8080, layers.IPProtocolTCP))
				want := e.encapsulated(t, tcp6(t, client6, 40000, 8080, syn, 63, 20), be, h, uplinkMAC, torMAC)
				return result{in: fromTor(tcp6(t, client6, 40000, 8080, syn, 64, 20)), want: want, backend: id}
			},
			verdict: xdpPass, stats: st{ctMiss: 1, ctSyn: 1, DatapathLbStatLB_STAT_NO_NEIGH_PASS: 1}, vip: 6,
		},
		{
			name: "backend without a route: dropped",
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40000, 9000, syn, 64, 20))}
			},
			verdict: xdpDrop, stats: st{ctMiss: 1, ctSyn: 1}, drops: dr{DatapathDropReasonDROP_FIB: 1}, vip: 8,
		},
		{
			name: "vip without a maglev table: dropped",
			setup: func(t *testing.T, e *lbEnv) {
				e.must(t, e.lb.DeleteTables(5))
				t.Cleanup(func() { e.table(t, 5, e.tables[5]) })
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40001, 22, syn, 64, 0))}
			},
			verdict: xdpDrop, stats: st{ctMiss: 1}, drops: dr{DatapathDropReasonDROP_NO_BACKEND: 1},
		},
		{
			name: "a table of its own size, naming a backend id beyond 16 bits",
			setup: func(t *testing.T, e *lbEnv) {
				e.backend(t, bigBackendID, "2001:db8:be::99")
				e.withTable(t, 1, []uint32{bigBackendID, 2, bigBackendID, 3, bigBackendID, 2, bigBackendID}) // 7 slots
			},
			packet:  tcp6Flow(40020, 443, syn, 1),
			verdict: xdpTx, stats: newSYN, vip: 1,
		},
		{
			name: "a table without backends (every weight 0): dropped",
			setup: func(t *testing.T, e *lbEnv) {
				e.withTable(t, 1, make([]uint32, 11))
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40000, 443, syn, 64, 20))}
			},
			verdict: xdpDrop, stats: st{ctMiss: 1}, drops: dr{DatapathDropReasonDROP_NO_BACKEND: 1},
		},
		{
			name: "no outer source for the family: dropped",
			setup: func(t *testing.T, e *lbEnv) {
				s := e.settings
				s.Src6 = netip.Prefix{}
				e.withSettings(t, s)
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return result{in: fromTor(tcp6(t, client6, 40000, 443, syn, 64, 20))}
			},
			verdict: xdpDrop, stats: st{ctMiss: 1, ctSyn: 1}, drops: dr{DatapathDropReasonDROP_NO_SOURCE: 1},
			vip: 1,
		},
	})
}
