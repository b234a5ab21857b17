package bpf

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestLBConntrack: a SYN takes the Maglev table and creates no entry; the
// flow's first other packet is tracked (new entry), its next one makes the
// entry established; a flow keeps its backend while the Maglev table
// changes; a SYN of a reused tuple, removed backends and new flows follow
// the table.
func TestLBConntrack(t *testing.T) {
	flow1 := key6(40000, 443, layers.IPProtocolTCP)
	handshake := func(t *testing.T, e *lbEnv) {
		e.send(t, tcp6Flow(40000, 443, syn, 1)(t, e))
		e.send(t, tcp6Flow(40000, 443, ack, 1)(t, e))
	}
	established := func(t *testing.T, e *lbEnv) {
		handshake(t, e)
		e.send(t, tcp6Flow(40000, 443, ack, 1)(t, e))
	}
	moved := func(t *testing.T, e *lbEnv) { e.withTable(t, 1, tableWithout(e.initialBackend(t, 1, flow1))) }
	notInitial := func(r result, t *testing.T, e *lbEnv) result {
		if r.backend == e.initialBackend(t, 1, flow1) {
			t.Fatalf("the new table still maps the flow to backend %d", r.backend)
		}
		return r
	}
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
			name:    "a syn takes the table and creates no entry",
			packet:  tcp6Flow(40000, 443, syn, 1),
			verdict: xdpTx, stats: newSYN, vip: 1,
		},
		{
			name:    "a syn again: still no entry to hit",
			setup:   func(t *testing.T, e *lbEnv) { e.send(t, tcp6Flow(40000, 443, syn, 1)(t, e)) },
			packet:  tcp6Flow(40000, 443, syn, 1),
			verdict: xdpTx, stats: newSYN, vip: 1,
		},
		{
			name:    "the handshake's ack: the flow is tracked (a new entry)",
			setup:   func(t *testing.T, e *lbEnv) { e.send(t, tcp6Flow(40000, 443, syn, 1)(t, e)) },
			packet:  tcp6Flow(40000, 443, ack, 1),
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name:    "the flow's next packet hits conntrack and makes the entry established",
			setup:   handshake,
			packet:  tcp6Flow(40000, 443, ack, 1),
			verdict: xdpTx, stats: st{ctHit: 1, ctPromo: 1, sTX: 1}, vip: 1,
		},
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
				moved(t, e)
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return tcp6To(40000, 443, ack, e.initialBackend(t, 1, flow1))(t, e)
			},
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 1,
		},
		{
			name: "maglev table changed after the handshake's ack: the flow keeps its backend",
			setup: func(t *testing.T, e *lbEnv) {
				handshake(t, e)
				moved(t, e)
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return tcp6To(40000, 443, ack, e.initialBackend(t, 1, flow1))(t, e)
			},
			verdict: xdpTx, stats: st{ctHit: 1, ctPromo: 1, sTX: 1}, vip: 1,
		},
		{
			name: "maglev table changed between syn and ack: the ack follows the new table",
			setup: func(t *testing.T, e *lbEnv) {
				e.send(t, tcp6Flow(40000, 443, syn, 1)(t, e))
				moved(t, e)
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return notInitial(tcp6Flow(40000, 443, ack, 1)(t, e), t, e)
			},
			verdict: xdpTx, stats: newFlow, vip: 1,
		},
		{
			name:  "maglev table changed: a new flow follows the new table",
			setup: moved,
			packet: func(t *testing.T, e *lbEnv) result {
				return notInitial(tcp6Flow(40000, 443, syn, 1)(t, e), t, e)
			},
			verdict: xdpTx, stats: newSYN, vip: 1,
		},
		{
			name: "a syn of a tracked tuple (reused) takes the table and rewrites the entry",
			setup: func(t *testing.T, e *lbEnv) {
				established(t, e)
				moved(t, e)
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return notInitial(tcp6Flow(40000, 443, syn, 1)(t, e), t, e)
			},
			verdict: xdpTx, stats: st{ctMiss: 1, ctSyn: 1, ctInsert: 1, sTX: 1}, vip: 1,
		},
		{
			name: "after a syn rewrote a reused tuple, its ack meets the syn's backend",
			setup: func(t *testing.T, e *lbEnv) {
				established(t, e)
				moved(t, e)
				e.send(t, tcp6Flow(40000, 443, syn, 1)(t, e))
			},
			packet: func(t *testing.T, e *lbEnv) result {
				return notInitial(tcp6Flow(40000, 443, ack, 1)(t, e), t, e)
			},
			verdict: xdpTx, stats: st{ctHit: 1, ctPromo: 1, sTX: 1}, vip: 1,
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
			name:    "udp: the first datagram is tracked",
			packet:  udpQuery("query"),
			verdict: xdpTx, stats: newFlow, vip: 2,
		},
		{
			name:    "udp: the second datagram hits conntrack and makes the entry established",
			setup:   func(t *testing.T, e *lbEnv) { e.send(t, udpQuery("query")(t, e)) },
			packet:  udpQuery("query2"),
			verdict: xdpTx, stats: st{ctHit: 1, ctPromo: 1, sTX: 1}, vip: 2,
		},
		{
			name: "udp: the third datagram is an established hit",
			setup: func(t *testing.T, e *lbEnv) {
				e.send(t, udpQuery("query")(t, e))
				e.send(t, udpQuery("query2")(t, e))
			},
			packet:  udpQuery("query3"),
			verdict: xdpTx, stats: st{ctHit: 1, sTX: 1}, vip: 2,
		},
	})
}

// uplinkKinds are the ways a packet's ingress link may be known to the
// data plane: not at all, as a link whose flows come from any CPU (veth,
// tap), and as one whose flows stay on one CPU (a NIC with RSS:
// UPLINK_F_FLOW_AFFINE), alone - settings then say every uplink is so
// (SETTINGS_F_UPLINKS_AFFINE) and the uplinks map is not read - or beside
// an any-cpu uplink, where the map is read. The last kind shows that the
// settings flag is what is read when set: the ingress link is not listed,
// but the only listed uplink is one-cpu. Only the affine kinds skip the
// cross-CPU conntrack steps.
var uplinkKinds = []struct {
	name   string
	links  func(ifindex int) []Uplink // nil: SetUplinks is not called
	affine bool
}{
	{name: "unlisted"},
	{name: "any-cpu", links: func(i int) []Uplink { return []Uplink{{Ifindex: i}} }},
	{name: "one-cpu", links: func(i int) []Uplink { return []Uplink{{Ifindex: i, FlowAffine: true}} }, affine: true},
	{name: "one-cpu-beside-any-cpu", affine: true, links: func(i int) []Uplink {
		return []Uplink{{Ifindex: i, FlowAffine: true}, {Ifindex: i + 1000}}
	}},
	{name: "unlisted-settings-one-cpu", affine: true, links: func(i int) []Uplink {
		return []Uplink{{Ifindex: i + 1000, FlowAffine: true}}
	}},
}

// crossCPUEnv is newLBEnv with the uplinks links gives (nil: none), and
// two CPUs the test may run on (or a skip).
func crossCPUEnv(t *testing.T, links func(ifindex int) []Uplink) (*lbEnv, uint32, uint32) {
	e := newLBEnv(t)
	cpus := allowedCPUs(t)
	if len(cpus) < 2 {
		t.Skipf("SKIP: needs two CPUs to meet two conntrack partitions, the process may use %v", cpus)
	}
	if links != nil {
		e.must(t, e.node.SetUplinks(links(e.ifindex)))
	}
	programLB(t, e)
	e.resetFlows(t)
	return e, cpus[0], cpus[1]
}

// TestLBConntrackReusedTupleOnAnotherCPU: where XDP runs on the sending
// CPU (veth), one connection's packets meet several CPUs' conntrack
// partitions. A connection that ends leaves its entry on those CPUs; when
// its tuple is reused after the table changed, the new connection's SYN
// (on one CPU) takes the new table and its ACK (on another) must meet the
// SYN's backend, not the old connection's - which has no such connection
// and resets it (lab: TestRackReloads, one request reset after a drain).
// On an uplink whose flows stay on one CPU the SYN sweeps nothing (no
// ct_swept): the other CPU's entry stays and takes the ACK, which is what
// shows that the step was skipped (on such a link the ACK would never
// come from another CPU).
func TestLBConntrackReusedTupleOnAnotherCPU(t *testing.T) {
	for _, kind := range uplinkKinds {
		t.Run(kind.name, func(t *testing.T) {
			e, synCPU, ackCPU := crossCPUEnv(t, kind.links)
			flow := key6(40000, 443, layers.IPProtocolTCP)
			old := e.initialBackend(t, 1, flow)
			sendOn := func(cpu uint32, r result) {
				t.Helper()
				if v, out := e.runOn(t, cpu, r.in, true); v != xdpTx || !bytes.Equal(out, r.want) {
					t.Fatalf("preparation packet on CPU %d: verdict %d, output differs: %s", cpu, v, diffPackets(out, r.want))
				}
			}
			// The earlier connection: every packet on ackCPU.
			for _, f := range []tcpFlags{syn, ack, ack} {
				sendOn(ackCPU, tcp6Flow(40000, 443, f, 1)(t, e))
			}
			e.withTable(t, 1, tableWithout(old))

			// The new connection on the same tuple: its SYN on synCPU...
			r := tcp6Flow(40000, 443, syn, 1)(t, e)
			if r.backend == old {
				t.Fatalf("the new table still maps the flow to backend %d", old)
			}
			synBackend := r.backend
			before := e.snap(t)
			sendOn(synCPU, r)
			want := st{ctMiss: 1, ctSyn: 1, ctSwept: 1, sTX: 1}
			if kind.affine {
				want = st{ctMiss: 1, ctSyn: 1, sTX: 1}
			}
			checkDeltas(t, before, e.snap(t), want, nil)

			// ... its handshake ACK and its data on ackCPU: the SYN's
			// backend, or - nothing swept - the old connection's entry.
			for i, name := range []string{"handshake ack", "first data"} {
				r := tcp6Flow(40000, 443, ack, 1)(t, e)
				want := st{ctMiss: 1, ctInsert: 1, sTX: 1}
				if i == 1 {
					want = st{ctHit: 1, ctPromo: 1, sTX: 1}
				}
				if kind.affine {
					r = tcp6To(40000, 443, ack, old)(t, e)
					want = st{ctHit: 1, sTX: 1}
				}
				before := e.snap(t)
				v, out := e.runOn(t, ackCPU, r.in, true)
				after := e.snap(t)
				if v != xdpTx || !bytes.Equal(out, r.want) {
					t.Fatalf("%s on CPU %d: verdict %d, not sent to backend %d (the SYN's is %d, the old connection's %d):\n%s",
						name, ackCPU, v, r.backend, synBackend, old, diffPackets(out, r.want))
				}
				checkDeltas(t, before, after, want, nil)
			}
		})
	}
}

// TestLBConntrackFlowMovesToAnotherCPU: a flow tracked on one CPU whose
// packet arrives on another (veth: the sending CPU runs XDP) keeps its
// backend after the table changed: the entry is found in the other CPU's
// partition and copied, established, into this one. On an uplink whose
// flows stay on one CPU the other partitions are not searched (no
// ct_hit_elsewhere): the packet is a new flow there and takes the table.
func TestLBConntrackFlowMovesToAnotherCPU(t *testing.T) {
	for _, kind := range uplinkKinds {
		t.Run(kind.name, func(t *testing.T) {
			e, first, moved := crossCPUEnv(t, kind.links)
			flow := key6(40000, 443, layers.IPProtocolTCP)
			old := e.initialBackend(t, 1, flow)
			for _, f := range []tcpFlags{syn, ack, ack} {
				r := tcp6Flow(40000, 443, f, 1)(t, e)
				if v, out := e.runOn(t, first, r.in, true); v != xdpTx || !bytes.Equal(out, r.want) {
					t.Fatalf("preparation packet: verdict %d, output differs: %s", v, diffPackets(out, r.want))
				}
			}
			e.withTable(t, 1, tableWithout(old))
			packet, wants := tcp6To(40000, 443, ack, old), []st{{ctMiss: 1, ctElse: 1, ctInsert: 1, sTX: 1}, {ctHit: 1, sTX: 1}}
			if kind.affine {
				packet, wants = tcp6Flow(40000, 443, ack, 1), []st{{ctMiss: 1, ctInsert: 1, sTX: 1}, {ctHit: 1, ctPromo: 1, sTX: 1}}
			}
			for i, want := range wants {
				r := packet(t, e)
				if kind.affine && r.backend == old {
					t.Fatalf("the new table still maps the flow to backend %d", old)
				}
				before := e.snap(t)
				v, out := e.runOn(t, moved, r.in, true)
				after := e.snap(t)
				if v != xdpTx || !bytes.Equal(out, r.want) {
					t.Fatalf("packet %d on CPU %d: verdict %d, not sent to backend %d (the flow's was %d):\n%s", i, moved, v, r.backend, old, diffPackets(out, r.want))
				}
				checkDeltas(t, before, after, want, nil)
			}
		})
	}
}
