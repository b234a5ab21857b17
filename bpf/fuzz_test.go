package bpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/aird-net/aird/internal/testutil"
)

// FuzzXDP runs arbitrary frames through the real program with the test
// services programmed (programLB) and the router's test endpoints
// (newRouterEnv) in a namespace with a deterministic FIB. Every output
// must keep the program's contract (oracle, oracle_test.go): a changed
// frame is an encapsulation of the input's whole IP packet (only the hop
// limit / TTL decremented) to a backend under a well-formed outer header,
// a valid echo reply or too-big message to the input's source, the input
// delivered to an endpoint with its MACs and hop limit / TTL decremented,
// or the whole inner packet of a trusted tunnel packet to the node or a
// DSR endpoint; an unchanged frame is only passed. A frame not addressed
// to a VIP, the node or an endpoint must be passed byte for byte as it
// came in; and every verdict is counted: the frame in its family's
// packets, a drop under exactly one reason, a TX or redirect in exactly
// one event. (bench/soak.sh runs the verdict and counter invariants, not
// the oracle, over 10 M generated frames.)
//
// CI: AIRD_TEST_PRIVILEGED=1 go test ./bpf/ -run '^$' -fuzz '^FuzzXDP$' -fuzztime 60s
func FuzzXDP(f *testing.F) {
	for _, p := range packets(f) {
		if len(p) >= 14 {
			f.Add(p)
		}
	}
	for _, p := range fuzzSeeds(f) {
		f.Add(p)
	}
	for _, p := range lengthSeeds(f) {
		f.Add(p)
	}
	re := newRouterEnv(f)
	e := re.lbEnv
	programLB(f, e)
	var eps []Endpoint
	for _, ep := range re.endpoints {
		eps = append(eps, ep)
	}
	o := newOracle(e, eps)
	ours := map[netip.Addr]bool{nodeAddr6: true, nodeAddr4: true}
	for a := range o.vips {
		ours[a] = true
	}
	for a := range o.endpoints {
		ours[a] = true
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 || len(in) > maxLinearFrame {
			return // BPF_PROG_TEST_RUN refuses runts; see maxLinearFrame
		}
		before := e.verdictCounts(t)
		verdict, out := e.run(t, in, true)
		after := e.verdictCounts(t)
		if err := o.check(in, verdict, out); err != nil {
			t.Fatalf("verdict %d: %v\n in  %x\n out %x", verdict, err, in, out)
		}
		if !ours[testutil.FrameDestination(in)] && (verdict != xdpPass || !bytes.Equal(out, in)) {
			t.Fatalf("frame not for us: verdict %d, or modified:\n in  %x\n out %x", verdict, in, out)
		}
		want := verdictCounts{packets: 1}
		switch verdict {
		case xdpDrop:
			want.drops = 1
		case xdpTx:
			want.tx = 1
		case xdpRedirect:
			want.redirects = 1
		}
		if got := after.minus(before); got != want {
			t.Fatalf("verdict %d counted as %+v, want %+v, for %x", verdict, got, want, in)
		}
	})
}

// maxLinearFrame is the largest frame BPF_PROG_TEST_RUN keeps in one
// buffer on 4 KiB pages (4,096 - 256 bytes of headroom - 320 of
// skb_shared_info): beyond it the kernel puts the rest in fragments even
// for a program without xdp.frags, which no driver hands such a program
// (it refuses the attachment when the MTU needs them). The program sees
// only the linear part then, so a trim computed from it leaves the
// fragment's bytes (FuzzXDP found that with a 3,521-byte frame).
const maxLinearFrame = 4096 - 256 - 320

// fuzzSeeds are frames that reach deep into the stages.
func fuzzSeeds(t testing.TB) [][]byte {
	l3 := ip6(client6, vip6, layers.IPProtocolUDP, 64)
	frag := ip6(client6, vip6, layers.IPProtocolIPv6Fragment, 64)
	echo := ip6(client6, vip6, layers.IPProtocolICMPv6, 64)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	_ = ic.SetNetworkLayerForChecksum(echo)
	tunnel := ip6("2001:db8:5::99", nodeAddr6.String(), layers.IPProtocolIPv6, 64)
	ipip := ip4("192.0.2.77", nodeAddr4.String(), layers.IPProtocolIPv4, 64)
	return [][]byte{
		fromTor(tcp6(t, client6, 40000, 443, syn, 64, 20)),
		fromTor(tcp6(t, client6, 40000, 443, ack, 1, 20)),
		fromTor(tcp6(t, client6, 40000, 443, ack, 64, 1440)),
		fromTor(tcp4(t, vip4, 50000, 80, syn, 64, 10)),
		fromTor(tcp4(t, vip4b, 50000, 80, ack, 64, 1460)),
		fromTor(ipPacket(t, l3, udpL(l3, 5353, 53), gopacket.Payload("q"))),
		fromTor(ipPacket(t, frag, &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: 9}, gopacket.Payload("later"))),
		fromTor(ipPacket(t, echo, ic, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1}, gopacket.Payload("ping"))),
		fromTor(ptb6(t, 40000, 64)),
		fromTor(withExtHeaders(t, tcp6(t, client6, 40020, 443, syn, 64, 8), layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination)),
		fromTor(ipPacket(t, tunnel, gopacket.Payload(tcp6(t, client6, 1, 443, ack, 63, 0)))),
		fromTor(ipPacket(t, ipip, gopacket.Payload(tcp4(t, vip4b, 50000, 80, ack, 63, 20)))),
		fromTor(tcp6(t, "2001:db8:dd::1", 40000, 22, syn, 64, 0)),
	}
}

// lengthSeeds are frames whose length fields sit at their edges: IPv6
// payload length, IPv4 total length and header length, UDP length, TCP
// data offset, IPv6 extension header length, and the inner lengths of
// IP6IP6, 4in6 and IPIP tunnel packets to the node and to a DSR endpoint
// (decap.h): zero, one short, exact, one past, the maximum.
func lengthSeeds(t testing.TB) [][]byte {
	set := func(p []byte, off int, v uint16) []byte {
		p = bytes.Clone(p)
		binary.BigEndian.PutUint16(p[off:], v)
		return p
	}
	edges := func(n int) []uint16 { return []uint16{0, uint16(n - 1), uint16(n), uint16(n + 1), 0xffff} }
	var out [][]byte
	add := func(ip []byte, off, n int) {
		for _, v := range edges(n) {
			out = append(out, fromTor(set(ip, off, v)))
		}
	}
	t6 := tcp6(t, client6, 40200, 443, ack, 64, 20)
	add(t6, 4, len(t6)-40)
	t4 := tcp4(t, vip4b, 50200, 80, ack, 64, 20)
	add(t4, 2, len(t4))
	for _, ihl := range []byte{0x40, 0x44, 0x46, 0x4f} {
		p := bytes.Clone(t4)
		p[0] = ihl
		out = append(out, fromTor(p))
	}
	l3 := ip6(client6, vip6, layers.IPProtocolUDP, 64)
	u6 := ipPacket(t, l3, udpL(l3, 5353, 53), gopacket.Payload("query"))
	add(u6, 44, len(u6)-40)
	for _, doff := range []byte{0x00, 0x40, 0x50, 0xf0} {
		p := bytes.Clone(t6)
		p[40+12] = doff
		out = append(out, fromTor(p))
	}
	hbh := withExtHeaders(t, tcp6(t, client6, 40201, 443, ack, 64, 20), layers.IPProtocolIPv6HopByHop)
	for _, l := range []byte{0, 1, 2, 0xff} {
		p := bytes.Clone(hbh)
		p[41] = l
		out = append(out, fromTor(p))
	}
	add(hbh, 4, len(hbh)-40)
	echoIP := ip6(client6, vip6, layers.IPProtocolICMPv6, 64)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	_ = ic.SetNetworkLayerForChecksum(echoIP)
	echo := ipPacket(t, echoIP, ic, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1}, gopacket.Payload("ping"))
	add(echo, 4, len(echo)-40)
	// Tunnels: the outer and the inner length at their edges.
	src6, src4 := "2001:db8:5::99", "192.0.2.77"
	for _, tn := range []struct {
		outer []byte
		inner []byte
	}{
		{ipPacket(t, ip6(src6, nodeAddr6.String(), layers.IPProtocolIPv6, 64), gopacket.Payload(tcpTo6(t, served6))), tcpTo6(t, served6)},
		{ipPacket(t, ip6(src6, nodeAddr6.String(), layers.IPProtocolIPv4, 64), gopacket.Payload(tcpTo4(t, served4))), tcpTo4(t, served4)},
		{ipPacket(t, ip4(src4, nodeAddr4.String(), layers.IPProtocolIPv4, 64), gopacket.Payload(tcpTo4(t, served4))), tcpTo4(t, served4)},
		{ipPacket(t, ip6(src6, pod1, layers.IPProtocolIPv6, 64), gopacket.Payload(tcpTo6(t, vip6))), tcpTo6(t, vip6)},
		{ipPacket(t, ip6(src6, pod1, layers.IPProtocolIPv4, 64), gopacket.Payload(tcpTo4(t, vip4))), tcpTo4(t, vip4)},
	} {
		hl := len(tn.outer) - len(tn.inner)
		if tn.outer[0]>>4 == 6 {
			add(tn.outer, 4, len(tn.outer)-40)
		} else {
			add(tn.outer, 2, len(tn.outer))
		}
		if tn.inner[0]>>4 == 6 {
			add(tn.outer, hl+4, len(tn.inner)-40)
		} else {
			add(tn.outer, hl+2, len(tn.inner))
		}
	}
	return out
}

// verdictCounts are the counters that account for verdicts: packets per
// family, drops by reason, the TX events (lb tx, echo reply, too big
// generated) and the redirect events (lb redirect, router delivered,
// forwarded, decap).
type verdictCounts struct{ packets, drops, tx, redirects uint64 }

func (c verdictCounts) minus(o verdictCounts) verdictCounts {
	return verdictCounts{c.packets - o.packets, c.drops - o.drops, c.tx - o.tx, c.redirects - o.redirects}
}

func (e *lbEnv) verdictCounts(t testing.TB) verdictCounts {
	var c verdictCounts
	pc := pipelineCounters(t, e.objs.Pipeline.Stats)
	for _, f := range Families() {
		c.packets += pc.Family[f].Packets
	}
	for _, r := range DropReasons() {
		c.drops += pc.Drops[r]
	}
	for _, s := range []DatapathLbStat{DatapathLbStatLB_STAT_TX, DatapathLbStatLB_STAT_ICMP_ECHO, DatapathLbStatLB_STAT_PTB_GENERATED} {
		c.tx += pc.Events[s]
	}
	c.redirects += pc.Events[DatapathLbStatLB_STAT_REDIRECT]
	for _, s := range []DatapathRouterStat{DatapathRouterStatROUTER_STAT_DELIVERED, DatapathRouterStatROUTER_STAT_FORWARDED, DatapathRouterStatROUTER_STAT_DECAP} {
		c.redirects += sumU64(t, e.objs.Router.Events, uint32(s))
	}
	return c
}
