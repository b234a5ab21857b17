package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
	"github.com/aird-net/aird/lb"
)

// The soak's node: VIPs it balances, its underlay addresses, the load
// balancers it accepts tunnels from and the VIP it serves as a backend.
var (
	soakVIP6    = netip.MustParseAddr("2001:db8:100::1")
	soakVIP4    = netip.MustParseAddr("198.51.100.10")
	soakNode6   = netip.MustParseAddr("2001:db8:ff::1")
	soakNode4   = netip.MustParseAddr("192.0.2.1")
	soakServed6 = netip.MustParseAddr("2001:db8:300::10")
	soakServed4 = netip.MustParseAddr("198.51.100.200")
)

// TestSoak runs randomized frames through the real XDP program: valid,
// truncated and corrupted, to VIPs and elsewhere, tunnelled from trusted
// and untrusted sources, tagged, ICMP, fragments, garbage. Every frame
// must get a verdict (drop, pass, TX, redirect; never aborted), a frame
// not addressed to a VIP or the node must pass unchanged, and the
// counters must account for every verdict (drops by reason, TX, redirects,
// packets per family) in every chunk of packets. The kernel log must show
// no warning while it runs.
//
// AIRD_SOAK_PACKETS sets the number of frames (default 100,000, which CI
// runs); bench/soak.sh runs 10,000,000 outside CI.
func TestSoak(t *testing.T) {
	n := 100_000
	if v := os.Getenv("AIRD_SOAK_PACKETS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("AIRD_SOAK_PACKETS=%q", v)
		}
	}
	e := newSoakEnv(t)
	kmsg := openKmsg(t)
	reached := e.paths(t)
	gen := &soakGen{rng: rand.New(rand.NewPCG(uint64(n), 0x50a4))}
	const chunk = 50_000
	var verdicts [5]int
	inNetns(t, e.ns, func() {
		for done := 0; done < n; {
			size := min(chunk, n-done)
			before := e.counts(t)
			var v [5]int
			for range size {
				in := gen.frame()
				verdict, out := runFrame(t, e.prog, in, e.ifindex)
				switch verdict {
				case xdpDrop, xdpPass, xdpTx, xdpRedirect:
				default:
					t.Fatalf("verdict %d for %x", verdict, in)
				}
				if verdict == xdpPass && !soakOurs(testutil.FrameDestination(in)) && !bytes.Equal(out, in) {
					t.Fatalf("frame to %s, not a VIP's or the node's, passed modified:\n in  %x\n out %x", testutil.FrameDestination(in), in, out)
				}
				if verdict != xdpPass && verdict != xdpDrop && !soakOurs(testutil.FrameDestination(in)) {
					t.Fatalf("frame to %s, not a VIP's or the node's, got verdict %d:\n in  %x", testutil.FrameDestination(in), verdict, in)
				}
				v[verdict]++
			}
			e.checkCounts(t, before, e.counts(t), size, v)
			for i := range v {
				verdicts[i] += v[i]
			}
			done += size
		}
	})
	t.Logf("%d frames: %d dropped, %d passed, %d TX, %d redirected", n,
		verdicts[xdpDrop], verdicts[xdpPass], verdicts[xdpTx], verdicts[xdpRedirect])
	t.Logf("frames by kind: %v", gen.kinds)
	// The frames reached the stages' interesting paths.
	now := e.paths(t)
	for name, was := range reached {
		t.Logf("%s: +%d", name, now[name]-was)
		if n >= 10_000 && now[name] == was {
			t.Errorf("no frame reached %s", name)
		}
	}
	if warnings := kmsg.warnings(t); len(warnings) > 0 {
		t.Fatalf("kernel warnings during the soak:\n%s", strings.Join(warnings, "\n"))
	}
}

func soakOurs(a netip.Addr) bool {
	return a == soakVIP6 || a == soakVIP4 || a == soakNode6 || a == soakNode4
}

type soakEnv struct {
	*env
	pipeline bpf.PipelineMaps
	router   bpf.RouterMaps
}

// newSoakEnv loads the datapath with three services (VIP6 tcp/443 and
// udp/53, VIP4 tcp/80, IPv6 backends), the node's addresses, tunnel
// sources and served VIPs.
func newSoakEnv(t *testing.T) *soakEnv {
	e := &soakEnv{env: newEnv(t, 0)}
	var err error
	if e.pipeline, err = bpf.ViewPipeline(e.coll); err != nil {
		t.Fatal(err)
	}
	if e.router, err = bpf.ViewRouter(e.coll); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, e.lbMaps)
	backends := make([]lb.Backend, 8)
	for i := range backends {
		backends[i] = lb.Backend{Address: netip.MustParseAddr(fmt.Sprintf("2001:db8:be::%x", i+1)), Weight: 100}
	}
	svc := func(name string, vip netip.Addr, proto string, port int) lb.Service {
		return lb.Service{Name: name, VIP: vip, Port: port, Protocol: proto, Backends: backends, HealthCheck: lb.HealthCheck{Type: "none"}}
	}
	must(t, m.Apply(lb.Config{Services: []lb.Service{
		svc("web6", soakVIP6, "tcp", 443), svc("dns6", soakVIP6, "udp", 53), svc("web4", soakVIP4, "tcp", 80)}}))
	must(t, e.node.SetAddrs([]netip.Addr{soakNode6, soakNode4}))
	must(t, e.node.SetTunnelSources([]netip.Prefix{netip.MustParsePrefix("2001:db8:5::/64"), netip.MustParsePrefix("192.0.2.64/27")}))
	must(t, e.node.SetLocalAddrs([]netip.Addr{soakServed6, soakServed4}))
	return e
}

// sumPerCPU reads entry key of a per-CPU __u64 array summed over CPUs.
func sumPerCPU(t testing.TB, m *ebpf.Map, key uint32) uint64 {
	var per []uint64
	must(t, m.Lookup(&key, &per))
	var s uint64
	for _, v := range per {
		s += v
	}
	return s
}

// soakCounts are the counters that account for verdicts.
type soakCounts struct {
	packets, drops, tx, redirects uint64
}

func (e *soakEnv) counts(t testing.TB) soakCounts {
	sum := func(m *ebpf.Map, key uint32) uint64 { return sumPerCPU(t, m, key) }
	pc, err := bpf.SumPipelineCounters(e.pipeline.Stats)
	must(t, err)
	var c soakCounts
	for _, f := range bpf.Families() {
		c.packets += pc.Family[f].Packets
	}
	for _, r := range bpf.DropReasons() {
		c.drops += pc.Drops[r]
	}
	for _, s := range []bpf.DatapathLbStat{bpf.DatapathLbStatLB_STAT_TX, bpf.DatapathLbStatLB_STAT_ICMP_ECHO, bpf.DatapathLbStatLB_STAT_PTB_GENERATED} {
		c.tx += pc.Events[s]
	}
	c.redirects += pc.Events[bpf.DatapathLbStatLB_STAT_REDIRECT]
	for _, s := range []bpf.DatapathRouterStat{bpf.DatapathRouterStatROUTER_STAT_DELIVERED, bpf.DatapathRouterStatROUTER_STAT_FORWARDED, bpf.DatapathRouterStatROUTER_STAT_DECAP} {
		c.redirects += sum(e.router.Events, uint32(s))
	}
	return c
}

// paths reads the counters of paths a soak must reach.
func (e *soakEnv) paths(t testing.TB) map[string]uint64 {
	pc, err := bpf.SumPipelineCounters(e.pipeline.Stats)
	must(t, err)
	out := map[string]uint64{}
	for _, s := range []bpf.DatapathLbStat{bpf.DatapathLbStatLB_STAT_TX, bpf.DatapathLbStatLB_STAT_DECAP_IPV6, bpf.DatapathLbStatLB_STAT_DECAP_IPV4,
		bpf.DatapathLbStatLB_STAT_ICMP_ECHO, bpf.DatapathLbStatLB_STAT_PTB_RELAYED, bpf.DatapathLbStatLB_STAT_CT_HIT, bpf.DatapathLbStatLB_STAT_CT_SYN} {
		out["event "+s.String()] = pc.Events[s]
	}
	for _, r := range []bpf.DatapathDropReason{bpf.DatapathDropReasonDROP_TUNNEL_SOURCE, bpf.DatapathDropReasonDROP_TUNNEL_DESTINATION,
		bpf.DatapathDropReasonDROP_MALFORMED, bpf.DatapathDropReasonDROP_NO_SERVICE, bpf.DatapathDropReasonDROP_DECAP_MALFORMED} {
		out["drop "+r.String()] = pc.Drops[r]
	}
	return out
}

// checkCounts fails unless the counters grew by exactly what n frames with
// verdicts v account for.
func (e *soakEnv) checkCounts(t *testing.T, before, after soakCounts, n int, v [5]int) {
	t.Helper()
	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"packets counted per family", after.packets - before.packets, uint64(n)},
		{"drops counted by reason", after.drops - before.drops, uint64(v[xdpDrop])},
		{"TX counted (tx, icmp_echo, ptb_generated)", after.tx - before.tx, uint64(v[xdpTx])},
		{"redirects counted (redirect, delivered, forwarded, decap)", after.redirects - before.redirects, uint64(v[xdpRedirect])},
	} {
		if c.got != c.want {
			t.Fatalf("%s: +%d for %d such verdicts in a chunk of %d frames", c.what, c.got, c.want, n)
		}
	}
}

// runFrame runs the program once on in, arriving on ifindex, and returns
// the verdict and the frame as the program left it.
func runFrame(t testing.TB, prog *ebpf.Program, in []byte, ifindex int) (uint32, []byte) {
	verdict, _, out := testRun(t, prog, in, make([]byte, len(in)+2048), ifindex)
	return verdict, out
}

// soakGen builds random frames.
type soakGen struct {
	rng   *rand.Rand
	kinds map[string]int
}

var (
	torMAC    = net.HardwareAddr{2, 0xbb, 0, 0, 0, 7}
	uplinkMAC = net.HardwareAddr{2, 0xaa, 0, 0, 0, 1}
)

// frame returns one random frame: a well-formed one of a random kind,
// then, sometimes, truncated, corrupted or replaced by garbage.
func (g *soakGen) frame() []byte {
	if g.kinds == nil {
		g.kinds = map[string]int{}
	}
	kind, b := g.wellFormed()
	switch r := g.rng.IntN(100); {
	case r < 20 && len(b) > 14:
		b = b[:14+g.rng.IntN(len(b)-14)]
		kind += "/truncated"
	case r < 40:
		for range 1 + g.rng.IntN(8) {
			b[g.rng.IntN(len(b))] ^= byte(1 + g.rng.IntN(255))
		}
		kind += "/corrupted"
	case r < 42:
		b = make([]byte, 14+g.rng.IntN(1500))
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
		kind = "garbage"
	}
	g.kinds[kind]++
	return b
}

func (g *soakGen) addr6(prefix string) net.IP {
	a := netip.MustParsePrefix(prefix).Addr().As16()
	binary.BigEndian.PutUint64(a[8:], g.rng.Uint64())
	return a[:]
}

func (g *soakGen) addr4(prefix string) net.IP {
	p := netip.MustParsePrefix(prefix)
	a := p.Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | g.rng.Uint32()>>p.Bits()
	binary.BigEndian.PutUint32(a[:], v)
	return a[:]
}

func (g *soakGen) payload() gopacket.Payload {
	p := make([]byte, g.rng.IntN(1400))
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

func (g *soakGen) tcp(nl gopacket.NetworkLayer, dport uint16) *layers.TCP {
	l := &layers.TCP{SrcPort: layers.TCPPort(1024 + g.rng.IntN(60000)), DstPort: layers.TCPPort(dport),
		Seq: g.rng.Uint32(), Window: 65535}
	switch g.rng.IntN(5) {
	case 0:
		l.SYN = true
	case 1:
		l.SYN, l.ACK = true, true
	case 2:
		l.FIN, l.ACK = true, true
	case 3:
		l.RST = true
	default:
		l.ACK = true
	}
	_ = l.SetNetworkLayerForChecksum(nl)
	return l
}

func (g *soakGen) ip6(src, dst net.IP, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: uint8(1 + g.rng.IntN(255)), NextHeader: next, SrcIP: src, DstIP: dst}
}

func (g *soakGen) ip4(src, dst net.IP, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: uint8(1 + g.rng.IntN(255)), Protocol: proto, Id: uint16(g.rng.Uint32()),
		Flags: layers.IPv4DontFragment, SrcIP: src, DstIP: dst}
}

// serialize builds an Ethernet frame around ls (lengths and checksums
// fixed).
func serialize(typ layers.EthernetType, ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: torMAC, DstMAC: uplinkMAC, EthernetType: typ}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append([]gopacket.SerializableLayer{eth}, ls...)...); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// inner is a random IP packet (no Ethernet) for a tunnel: TCP to the
// served VIP, to a foreign address or to a VIP this node balances.
func (g *soakGen) inner() []byte {
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	var err error
	if g.rng.IntN(2) == 0 {
		dst := []net.IP{soakServed6.AsSlice(), g.addr6("2001:db8:77::/64"), soakVIP6.AsSlice()}[g.rng.IntN(3)]
		l3 := g.ip6(g.addr6("2001:db8:c0::/64"), dst, layers.IPProtocolTCP)
		err = gopacket.SerializeLayers(buf, opts, l3, g.tcp(l3, 443), g.payload())
	} else {
		dst := []net.IP{soakServed4.AsSlice(), g.addr4("203.0.113.0/24"), soakVIP4.AsSlice()}[g.rng.IntN(3)]
		l3 := g.ip4(g.addr4("10.1.0.0/16"), dst, layers.IPProtocolTCP)
		err = gopacket.SerializeLayers(buf, opts, l3, g.tcp(l3, 80), g.payload())
	}
	if err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// wellFormed returns a kind and a well-formed frame of it.
func (g *soakGen) wellFormed() (string, []byte) {
	client6, client4 := g.addr6("2001:db8:c0::/64"), g.addr4("10.1.0.0/16")
	switch g.rng.IntN(13) {
	case 12:
		// One of 64 recurring flows: conntrack hits.
		src := netip.MustParseAddr("2001:db8:c0::").As16()
		src[15] = byte(g.rng.IntN(64))
		l3 := g.ip6(src[:], soakVIP6.AsSlice(), layers.IPProtocolTCP)
		l4 := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: g.rng.Uint32(), ACK: true, Window: 65535}
		_ = l4.SetNetworkLayerForChecksum(l3)
		return "tcp6-vip-recurring", serialize(layers.EthernetTypeIPv6, l3, l4, g.payload())
	case 0:
		l3 := g.ip6(client6, soakVIP6.AsSlice(), layers.IPProtocolTCP)
		return "tcp6-vip", serialize(layers.EthernetTypeIPv6, l3, g.tcp(l3, 443), g.payload())
	case 1:
		l3 := g.ip6(client6, soakVIP6.AsSlice(), layers.IPProtocolUDP)
		u := &layers.UDP{SrcPort: layers.UDPPort(1024 + g.rng.IntN(60000)), DstPort: 53}
		_ = u.SetNetworkLayerForChecksum(l3)
		return "udp6-vip", serialize(layers.EthernetTypeIPv6, l3, u, g.payload())
	case 2:
		l3 := g.ip4(client4, soakVIP4.AsSlice(), layers.IPProtocolTCP)
		return "tcp4-vip", serialize(layers.EthernetTypeIPv4, l3, g.tcp(l3, 80), g.payload())
	case 3:
		port := []uint16{443, 80, 22, 9999}[g.rng.IntN(4)]
		l3 := g.ip6(client6, soakVIP6.AsSlice(), layers.IPProtocolTCP)
		return "tcp6-vip-other-port", serialize(layers.EthernetTypeIPv6, l3, g.tcp(l3, port))
	case 4:
		l3 := g.ip6(client6, g.addr6("2001:db8:77::/64"), layers.IPProtocolTCP)
		return "tcp6-elsewhere", serialize(layers.EthernetTypeIPv6, l3, g.tcp(l3, 443), g.payload())
	case 5:
		l3 := g.ip4(client4, g.addr4("203.0.113.0/24"), layers.IPProtocolUDP)
		u := &layers.UDP{SrcPort: 5353, DstPort: 53}
		_ = u.SetNetworkLayerForChecksum(l3)
		return "udp4-elsewhere", serialize(layers.EthernetTypeIPv4, l3, u, g.payload())
	case 6:
		l3 := g.ip6(client6, soakVIP6.AsSlice(), layers.IPProtocolICMPv6)
		typ := []uint8{layers.ICMPv6TypeEchoRequest, layers.ICMPv6TypePacketTooBig, layers.ICMPv6TypeDestinationUnreachable}[g.rng.IntN(3)]
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
		_ = ic.SetNetworkLayerForChecksum(l3)
		q := g.ip6(soakVIP6.AsSlice(), client6, layers.IPProtocolTCP)
		qb := gopacket.NewSerializeBuffer()
		qt := g.tcp(q, uint16(1024+g.rng.IntN(60000)))
		qt.SrcPort = 443 // the VIP's side of a flow of service web6
		_ = gopacket.SerializeLayers(qb, gopacket.SerializeOptions{FixLengths: true}, q, qt)
		body := append([]byte{0, 0, 0x05, 0x00}, qb.Bytes()...)
		if typ == layers.ICMPv6TypeEchoRequest {
			body = []byte{0, 1, 0, 1, 'p', 'i', 'n', 'g'}
		}
		return "icmp6-vip", serialize(layers.EthernetTypeIPv6, l3, ic, gopacket.Payload(body))
	case 7:
		l3 := g.ip6(client6, soakVIP6.AsSlice(), layers.IPProtocolIPv6Fragment)
		fr := &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: uint16(g.rng.IntN(2) * 100),
			MoreFragments: g.rng.IntN(2) == 0, Identification: g.rng.Uint32()}
		return "frag6-vip", serialize(layers.EthernetTypeIPv6, l3, fr, g.payload())
	case 8, 9:
		in := g.inner()
		next6, next4 := layers.IPProtocolIPv6, layers.IPProtocolIPv6
		if in[0]>>4 == 4 {
			next6, next4 = layers.IPProtocolIPv4, layers.IPProtocolIPv4
		}
		if g.rng.IntN(2) == 0 {
			src := []string{"2001:db8:5::/64", "2001:db8:6666::/64"}[g.rng.IntN(2)]
			dst := []net.IP{soakNode6.AsSlice(), g.addr6("2001:db8:77::/64")}[g.rng.IntN(2)]
			return "tunnel6", serialize(layers.EthernetTypeIPv6, g.ip6(g.addr6(src), dst, next6), gopacket.Payload(in))
		}
		src := []string{"192.0.2.64/27", "203.0.113.0/24"}[g.rng.IntN(2)]
		dst := []net.IP{soakNode4.AsSlice(), g.addr4("203.0.113.0/24")}[g.rng.IntN(2)]
		return "tunnel4", serialize(layers.EthernetTypeIPv4, g.ip4(g.addr4(src), dst, next4), gopacket.Payload(in))
	case 10:
		l3 := g.ip6(client6, soakVIP6.AsSlice(), layers.IPProtocolTCP)
		vlan := &layers.Dot1Q{VLANIdentifier: uint16(g.rng.IntN(4095)), Type: layers.EthernetTypeIPv6}
		return "vlan-tcp6-vip", serialize(layers.EthernetTypeDot1Q, vlan, l3, g.tcp(l3, 443))
	default:
		b := make([]byte, 60)
		copy(b, uplinkMAC)
		copy(b[6:], torMAC)
		binary.BigEndian.PutUint16(b[12:], []uint16{0x0806, 0x88cc, 0x8847}[g.rng.IntN(3)])
		return "other-ethertype", b
	}
}

// kmsgReader reads the kernel log records written after it was opened.
type kmsgReader struct{ fd int }

func openKmsg(t *testing.T) *kmsgReader {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/kmsg: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		t.Fatalf("seek /dev/kmsg: %v", err)
	}
	return &kmsgReader{fd: fd}
}

// warnings returns the kernel's warnings, bugs and oopses since open.
func (k *kmsgReader) warnings(t *testing.T) []string {
	var out []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(k.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if errors.Is(err, unix.EPIPE) { // overwritten records: keep reading
			continue
		}
		if err != nil {
			t.Fatalf("read /dev/kmsg: %v", err)
		}
		rec := string(buf[:n])
		head, msg, _ := strings.Cut(rec, ";")
		prio, _, _ := strings.Cut(head, ",")
		p, _ := strconv.Atoi(prio)
		if p>>3 != 0 || p&7 > 4 { // kernel facility, warning or worse
			continue
		}
		for _, bad := range []string{"WARNING", "BUG", "Oops", "Call Trace", "general protection", "bpf", "xdp"} {
			if strings.Contains(msg, bad) {
				out = append(out, strings.TrimSpace(msg))
				break
			}
		}
	}
}
