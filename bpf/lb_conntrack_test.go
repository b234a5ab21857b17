package bpf

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestLBConntrack: a flow keeps its backend while the Maglev table
// changes; SYNs, removed backends and new flows follow the table.
func TestLBConntrack(t *testing.T) {
	flow1 := key6(40000, 443, layers.IPProtocolTCP)
	established := func(t *testing.T, e *lbEnv) { e.send(t, tcp6Flow(40000, 443, syn, 1)(t, e)) }
	udpQuery := func(payload string) func(t *testing.T, e *lbEnv) result {
		return func(t *testing.T, e *lbEnv) result {
			build := func(hop uint8) []byte {
				l3 := ip6(client6, vip6, layers.IPProtocolUDP, hop)
				return ipPacket(t, l3, udpL(l3, 5353, 53), gopacket.Payload(payload))
			}
			want, id := e.viaGateway(t, build(63), 2, key6(5353, 53, layers.IPProtocolUDP))
			return result{in: fromTor(build(64)), want: want, backend: id}
		}
	}
	runLBCases(t, []lbCase{
		{
			name:    "ack of an established flow: conntrack hit, same backend",
			setup:   established,
			packet:  tcp6Flow(40000, 443, ack, 1),
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 1,
		},
		{
			name: "maglev table changed: the established flow keeps its backend",
			setup: func(t *testing.T, e *lbEnv) {
				established(t, e)
				e.withTable(t, 1, tableWithout(e.initialBackend(t, 1, flow1)))
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return tcp6To(40000, 443, ack, e.initialBackend(t, 1, flow1))(t, e)
			},
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 1,
		},
		{
			name: "maglev table changed: a new flow follows the new table",
			setup: func(t *testing.T, e *lbEnv) {
				e.withTable(t, 1, tableWithout(e.initialBackend(t, 1, flow1)))
			},
			packet: func(t *testing.T, e *lbEnv) result {
				r := tcp6Flow(40001, 443, syn, 1)(t, e)
				if r.backend == e.initialBackend(t, 1, flow1) {
					t.Fatalf("new table still maps to backend %d", r.backend)
				}
				return r
			},
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name: "a syn takes the table even when its flow is tracked",
			setup: func(t *testing.T, e *lbEnv) {
				established(t, e)
				e.withTable(t, 1, tableWithout(e.initialBackend(t, 1, flow1)))
			},
			packet:  tcp6Flow(40000, 443, syn, 1),
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name: "tracked backend removed: the flow moves to the table's choice",
			setup: func(t *testing.T, e *lbEnv) {
				established(t, e)
				gone := e.initialBackend(t, 1, flow1)
				e.withTable(t, 1, tableWithout(gone))
				e.must(t, e.lb.DeleteBackend(gone))
				t.Cleanup(func() { e.backend(t, gone, e.backends[gone].String()) })
			},
			packet:  tcp6Flow(40000, 443, ack, 1),
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name: "an entry of another vip id is not used",
			setup: func(t *testing.T, e *lbEnv) {
				established(t, e)
				e.must(t, e.lb.SetService(netip.MustParseAddr(vip6), uint8(layers.IPProtocolTCP), 443, 9, 0))
				e.withTable(t, 9, tableWithout(e.initialBackend(t, 1, flow1)))
				t.Cleanup(func() { e.must(t, e.lb.SetService(netip.MustParseAddr(vip6), uint8(layers.IPProtocolTCP), 443, 1, 0)) })
			},
			packet:  tcp6Flow(40000, 443, ack, 9),
			verdict: xdpTx, stats: newFlow, vip: 9,
		},
		{
			name:    "udp: the second datagram hits conntrack",
			setup:   func(t *testing.T, e *lbEnv) { e.send(t, udpQuery("query")(t, e)) },
			packet:  udpQuery("query2"),
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 2,
		},
	})
}
