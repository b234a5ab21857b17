package bpf

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// noPortsVIP is the vip id of the VIP_F_NO_PORTS service TestLBNoPortsService adds.
const noPortsVIP = 9

// TestLBNoPortsService: a VIP_F_NO_PORTS service (client affinity) balances
// and tracks a TCP packet on (src, dst, proto) with zero ports, though the
// packet carries ports: every connection of a client meets one backend,
// the one the port-less key's hash picks, and the outer header carries
// that hash (flow label, source bits). The lb stage hashes a
// port-carrying packet before it knows the service; this is the case where
// it must hash again.
func TestLBNoPortsService(t *testing.T) {
	const port = 7000
	noPorts := func(sport uint16, f tcpFlags) func(t *testing.T, e *lbEnv) result {
		return func(t *testing.T, e *lbEnv) result {
			if _, ok := e.tables[noPortsVIP]; !ok {
				e.must(t, e.lb.SetService(netip.MustParseAddr(vip6), uint8(layers.IPProtocolTCP), port, noPortsVIP,
					DatapathVipFlagsVIP_F_NO_PORTS))
				e.table(t, noPortsVIP, spreadTable(v6Backends...))
			}
			in := fromTor(tcp6(t, client6, sport, port, f, 64, 20))
			want, id := e.viaGateway(t, tcp6(t, client6, sport, port, f, 63, 20), noPortsVIP,
				key6(0, 0, layers.IPProtocolTCP))
			return result{in: in, want: want, backend: id}
		}
	}
	runLBCases(t, []lbCase{
		{
			name:    "a client's first ACK takes the table's backend for the port-less key",
			packet:  noPorts(40000, ack),
			verdict: xdpTx, stats: st{ctMiss: 1, ctInsert: 1, sTX: 1}, vip: noPortsVIP,
		},
		{
			name:    "a SYN from another port of the client: the same backend",
			packet:  noPorts(40001, syn),
			verdict: xdpTx, stats: st{ctMiss: 1, ctSyn: 1, sTX: 1}, vip: noPortsVIP,
		},
		{
			name:    "another connection of the client meets the first one's conntrack entry",
			setup:   func(t *testing.T, e *lbEnv) { e.send(t, noPorts(40000, ack)(t, e)) },
			packet:  noPorts(40002, ack),
			verdict: xdpTx, stats: st{ctHit: 1, ctPromo: 1, sTX: 1}, vip: noPortsVIP,
		},
	})
}
