package bpf

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/aird-net/aird/internal/testutil"
)

// A VIP-wide service (port 0, without VIP_F_NO_PORTS) balances each flow
// by its ports like a service with a port: its packets miss the lookup's
// first probe (their own port) and find the port-0 entry, with the flow
// key and flow hash made from their ports. Every flow must reach
// the backend the Go flow hash with its ports gives, its next packet the
// same backend from conntrack, and the flows must spread over the
// backends.
func TestLBVIPWideService(t *testing.T) {
	testutil.RequirePrivileged(t)
	e := newLBEnv(t)
	programLB(t, e)
	const vipWide = 9
	e.must(t, e.lb.SetService(netip.MustParseAddr(vip6), uint8(layers.IPProtocolTCP), 0, vipWide, 0))
	e.table(t, vipWide, spreadTable(v6Backends...))
	e.resetFlows(t)
	const dport = 7777 // no service of its own on vip6
	seen := map[uint32]bool{}
	for sport := uint16(41000); sport < 41016; sport++ {
		in := fromTor(tcp6(t, client6, sport, dport, ack, 64, 20))
		want, id := e.viaGateway(t, tcp6(t, client6, sport, dport, ack, 63, 20), vipWide, key6(sport, dport, layers.IPProtocolTCP))
		for i, stat := range []DatapathLbStat{ctMiss, ctHit} {
			before := e.snap(t)
			verdict, out := e.run(t, in, true)
			after := e.snap(t)
			if verdict != xdpTx || !bytes.Equal(out, want) {
				t.Fatalf("flow %d, packet %d: verdict %d, output differs:\n got  %x\n want %x\n%s", sport, i, verdict, out, want,
					diffPackets(out, want))
			}
			if d := after.stats[stat] - before.stats[stat]; d != 1 {
				t.Errorf("flow %d, packet %d: %s grew by %d, want 1", sport, i, stat, d)
			}
			checkTraffic(t, "vip", vipWide, before.vips, after.vips, len(in))
			checkTraffic(t, "backend", id, before.backends, after.backends, len(in))
		}
		seen[id] = true
	}
	if len(seen) < 2 {
		t.Errorf("16 flows of one client reached %d backend(s): the ports are not hashed", len(seen))
	}
}
