package bpf

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/aird-net/aird/internal/testutil"
)

// TC verdicts (linux/pkt_cls.h).
const (
	tcOK       = 0
	tcShot     = 2
	tcRedirect = 7
)

// skbCtx is the head of struct __sk_buff, the BPF_PROG_TEST_RUN context of
// a tc program: it sets the packet's mark. Fields the kernel does not let a
// test set stay zero.
type skbCtx struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTCI, VlanProto uint32
	Priority, IngressIfindex, Ifindex                                           uint32
}

// loMAC is what a packet on lo carries: all-zero addresses.
var loMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// runHC runs the probe program on a frame as lo's egress sees it (the test
// run's device is the namespace's lo) with the given mark.
func (e *lbEnv) runHC(t testing.TB, in []byte, mark uint32) (uint32, []byte) {
	t.Helper()
	opts := &ebpf.RunOptions{Data: bytes.Clone(in), DataOut: make([]byte, len(in)+512), Repeat: 1,
		Context: skbCtx{Mark: mark}}
	var ret uint32
	var err error
	testutil.InNetns(t, e.ns, func() { ret, err = e.objs.Programs.Probe.Run(opts) })
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return ret, opts.DataOut
}

// probe6 is a probe's TCP SYN from the node to vip6 as the kernel hands it
// to lo (Ethernet header with zero addresses).
func probe6(t testing.TB, dst string, sport uint16) []byte {
	l3 := ip6(nodeAddr6.String(), dst, layers.IPProtocolTCP, 64)
	l3.TrafficClass = 0x28
	return frame(loMAC, loMAC, ipPacket(t, l3, tcpL(l3, sport, 443, syn)))
}

func probe4(t testing.TB, dst string, sport uint16) []byte {
	l3 := ip4(nodeAddr4.String(), dst, layers.IPProtocolTCP, 64)
	l3.TOS = 0x10
	return frame(loMAC, loMAC, ipPacket(t, l3, tcpL(l3, sport, 80, syn)))
}

// partialChecksum replaces the TCP checksum of an IPv6 probe frame by what
// the kernel leaves there for CHECKSUM_PARTIAL: the folded pseudo-header
// sum, not complemented.
func partialChecksum(f []byte) []byte {
	ip := f[14:]
	tcpLen := len(ip) - 40
	var sum uint32
	for i := 8; i < 40; i += 2 { // source and destination address
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	sum += uint32(tcpLen>>16) + uint32(tcpLen&0xffff) + uint32(ip[6])
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[40+16:], uint16(sum))
	return f
}

// tunnelled is the exact frame the probe program must send: the
// environment's gateway is a resolved (permanent) neighbour, so the
// Ethernet header carries the FIB lookup's MAC addresses (gateway, uplink)
// and the outer family's type, then the outer header built like the lb
// stage's, the inner packet unchanged (the node originates it: no hop
// limit decrement).
func (e *lbEnv) tunnelled(t testing.TB, in []byte, be netip.Addr) []byte {
	t.Helper()
	return e.tunnelledVia(t, in, be, gwMAC, uplinkMAC)
}

// tunnelledUnresolved is tunnelled for a next hop not resolved yet: the
// frame keeps lo's Ethernet addresses for bpf_redirect_neigh to rewrite.
func (e *lbEnv) tunnelledUnresolved(t testing.TB, in []byte, be netip.Addr) []byte {
	t.Helper()
	return e.tunnelledVia(t, in, be, loMAC, loMAC)
}

func (e *lbEnv) tunnelledVia(t testing.TB, in []byte, be netip.Addr, dst, src net.HardwareAddr) []byte {
	t.Helper()
	inner := in[14:]
	var k DatapathFlowKey
	if inner[0]>>4 == 6 {
		p := gopacket.NewPacket(inner, layers.LayerTypeIPv6, gopacket.Default)
		ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		k = NewFlowKey(netip.MustParseAddr(ip.SrcIP.String()), netip.MustParseAddr(ip.DstIP.String()),
			uint16(tcp.SrcPort), uint16(tcp.DstPort), uint8(layers.IPProtocolTCP))
	} else {
		p := gopacket.NewPacket(inner, layers.LayerTypeIPv4, gopacket.Default)
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		k = NewFlowKey(netip.MustParseAddr(ip.SrcIP.String()), netip.MustParseAddr(ip.DstIP.String()),
			uint16(tcp.SrcPort), uint16(tcp.DstPort), uint8(layers.IPProtocolTCP))
	}
	return e.encapsulated(t, inner, be, FlowHash(&k, e.settings.HashSeed), dst, src)
}

// TestProbeTunnel runs the probe program (hc.h) on the packets lo's egress
// hands it and checks the exact output, the verdict and every LB counter.
func TestProbeTunnel(t *testing.T) {
	e := newLBEnv(t)
	programLB(t, e)
	e.must(t, e.node.SetProbeFIBIfindex(uint32(e.ifindex)))

	const (
		hcEncap      = DatapathLbStatLB_STAT_HC_ENCAP
		hcBadBackend = DatapathLbStatLB_STAT_HC_BAD_BACKEND
		hcFIB        = DatapathLbStatLB_STAT_HC_FIB
		hcMalformed  = DatapathLbStatLB_STAT_HC_MALFORMED
	)
	arp := frame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, loMAC, make([]byte, 28))
	arp[12], arp[13] = 0x08, 0x06

	cases := []struct {
		name    string
		in      func(t *testing.T) []byte
		mark    uint32
		verdict uint32
		want    func(t *testing.T, in []byte) []byte // nil: output = input
		stats   st
	}{
		{
			name:    "marked ipv6 probe: ip6ip6 to the backend of the mark",
			in:      func(t *testing.T) []byte { return probe6(t, vip6, 40001) },
			mark:    ProbeMark(3),
			verdict: tcRedirect,
			want:    func(t *testing.T, in []byte) []byte { return e.tunnelled(t, in, e.backends[3]) },
			stats:   st{hcEncap: 1},
		},
		{
			name: "pending (partial) tcp checksum: left for the egress device to finish",
			in: func(t *testing.T) []byte {
				return partialChecksum(probe6(t, vip6, 40010))
			},
			mark:    ProbeMark(4),
			verdict: tcRedirect,
			want:    func(t *testing.T, in []byte) []byte { return e.tunnelled(t, in, e.backends[4]) },
			stats:   st{hcEncap: 1},
		},
		{
			name:    "unmarked packet: untouched",
			in:      func(t *testing.T) []byte { return probe6(t, vip6, 40002) },
			verdict: tcOK,
		},
		{
			name:    "another mark: untouched",
			in:      func(t *testing.T) []byte { return probe6(t, vip6, 40003) },
			mark:    0x4000 | 3,
			verdict: tcOK,
		},
		{
			name:    "unknown backend id: dropped and counted",
			in:      func(t *testing.T) []byte { return probe6(t, vip6, 40004) },
			mark:    ProbeMark(999),
			verdict: tcShot,
			stats:   st{hcBadBackend: 1},
		},
		{
			name:    "ipv4 vip, ipv6 backend: 4in6",
			in:      func(t *testing.T) []byte { return probe4(t, vip4, 40005) },
			mark:    ProbeMark(2),
			verdict: tcRedirect,
			want:    func(t *testing.T, in []byte) []byte { return e.tunnelled(t, in, e.backends[2]) },
			stats:   st{hcEncap: 1},
		},
		{
			name:    "ipv4 vip, ipv4 backend: ipip",
			in:      func(t *testing.T) []byte { return probe4(t, vip4b, 40006) },
			mark:    ProbeMark(12),
			verdict: tcRedirect,
			want:    func(t *testing.T, in []byte) []byte { return e.tunnelled(t, in, e.backends[12]) },
			stats:   st{hcEncap: 1},
		},
		{
			name:    "ipv6 probe, ipv4 backend: dropped",
			in:      func(t *testing.T) []byte { return probe6(t, vip6, 40007) },
			mark:    ProbeMark(11),
			verdict: tcShot,
			stats:   st{hcBadBackend: 1},
		},
		{
			name:    "next hop without a neighbour entry: redirected, the neighbour layer resolves it",
			in:      func(t *testing.T) []byte { return probe6(t, vip6, 40008) },
			mark:    ProbeMark(20),
			verdict: tcRedirect,
			want:    func(t *testing.T, in []byte) []byte { return e.tunnelledUnresolved(t, in, e.backends[20]) },
			stats:   st{hcEncap: 1},
		},
		{
			name:    "no route to the backend: dropped",
			in:      func(t *testing.T) []byte { return probe6(t, vip6, 40009) },
			mark:    ProbeMark(21),
			verdict: tcShot,
			stats:   st{hcFIB: 1},
		},
		{
			name:    "marked non-ip frame: dropped",
			in:      func(*testing.T) []byte { return arp },
			mark:    ProbeMark(3),
			verdict: tcShot,
			stats:   st{hcMalformed: 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in(t)
			want := in
			if c.want != nil {
				want = c.want(t, in)
			}
			before := e.snap(t)
			verdict, out := e.runHC(t, in, c.mark)
			after := e.snap(t)
			if verdict != c.verdict {
				t.Fatalf("verdict %d, want %d", verdict, c.verdict)
			}
			if c.verdict != tcShot && !bytes.Equal(out, want) {
				t.Errorf("output differs\n got %x\nwant %x", out, want)
			}
			checkDeltas(t, before, after, c.stats, nil)
		})
	}
}
