package bench

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// routerEnv is the datapath in the benchmark namespace with one endpoint
// (a veth pair) holding podAddr, written through bpf.Router like the
// daemon does.
type routerEnv struct {
	ns                string
	uplink, epIfindex int
	objs              *bpf.Objects
	floor             *FloorObjects
	epMAC, epHostMAC  net.HardwareAddr
	uplinkMAC         net.HardwareAddr
}

var (
	podAddr    = netip.MustParseAddr("2001:db8:aa::10")
	remoteAddr = netip.MustParseAddr("2001:db8:be::77") // behind the gateway
)

func newRouterEnv(b *testing.B) *routerEnv {
	b.Helper()
	ns, up := newBenchNS(b)
	e := &routerEnv{ns: ns, uplink: up, epMAC: net.HardwareAddr{2, 0xcc, 0, 0, 0, 1}}
	host, peer := testutil.UniqueName("brh"), testutil.UniqueName("brc")
	testutil.Veth(b, host, ns, peer, ns)
	testutil.Run(b, "ip", "-n", ns, "link", "set", peer, "address", e.epMAC.String())
	for _, kv := range []string{"net.ipv6.conf." + host + ".forwarding=1", "net.ipv6.conf." + host + ".force_forwarding=1"} {
		testutil.NetnsExec(b, ns, "sysctl", "-q", "-w", kv)
	}
	testutil.InNetns(b, ns, func() {
		l, err := netlink.LinkByName(host)
		if err != nil {
			b.Fatal(err)
		}
		e.epIfindex, e.epHostMAC = l.Attrs().Index, l.Attrs().HardwareAddr
		ul, err := netlink.LinkByIndex(up)
		if err != nil {
			b.Fatal(err)
		}
		e.uplinkMAC = ul.Attrs().HardwareAddr
	})
	objs, err := bpf.LoadObjects(bpf.Config{ConntrackSize: 4096}, nil)
	if err != nil {
		b.Fatalf("load datapath: %v", err)
	}
	b.Cleanup(func() { _ = objs.Close() })
	e.objs = objs
	var floor FloorObjects
	if err := LoadFloorObjects(&floor, nil); err != nil {
		b.Fatalf("load floor: %v", err)
	}
	b.Cleanup(func() { _ = floor.Close() })
	e.floor = &floor
	must(b, bpf.NewNode(objs.Pipeline).SetUplinks([]bpf.Uplink{{Ifindex: up}}))
	must(b, bpf.NewRouter(objs.Router).SetEndpoint(e.endpoint(), nil))
	return e
}

// endpoint is the benchmark's endpoint: its veth, MACs and podAddr.
func (e *routerEnv) endpoint() bpf.Endpoint {
	return bpf.Endpoint{ID: 1, Ifindex: e.epIfindex, MAC: e.epMAC, HostMAC: e.epHostMAC, MTU: 1500, Addrs: []netip.Addr{podAddr}}
}

// tcp74 is a 74-byte IPv6 TCP frame src -> dst with hop limit hop.
func tcp74(b *testing.B, dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, hop uint8) []byte {
	b.Helper()
	l3 := &layers.IPv6{Version: 6, HopLimit: hop, NextHeader: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	l4 := &layers.TCP{SrcPort: 40000, DstPort: 8080, Seq: 1, Ack: 1, ACK: true, Window: 65535}
	_ = l4.SetNetworkLayerForChecksum(l3)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv6}, l3, l4); err != nil {
		b.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

const xdpRedirect = 4

// measureRouter runs the floor and prog alternately on pkt arriving on
// ifindex, checking every output of prog against want.
func (e *routerEnv) measureRouter(b *testing.B, prog *ebpf.Program, pkt []byte, ifindex int, want []byte) *result {
	floorPkt := template(b, false)
	r := &result{}
	inNetns(b, e.ns, func() {
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			fl := runOnce(b, e.floor.FloorXdp, floorPkt, e.uplink, xdpTx)
			d, out := runOut(b, prog, pkt, ifindex, xdpRedirect)
			if !bytes.Equal(out, want) {
				b.Fatalf("output differs:\n got  %x\n want %x", out, want)
			}
			r.add(d, fl)
		}
	})
	return r
}

// BenchmarkRouterToEndpoint: a 74-byte IPv6 TCP packet from the uplink to
// a local endpoint (aird_xdp: parse, count, decap and lb stages pass, the
// router delivers: hop limit, MACs, redirect to the endpoint's link), in
// multiples of the MAC-swap floor measured alternately.
func BenchmarkRouterToEndpoint(b *testing.B) {
	e := newRouterEnv(b)
	client := netip.MustParseAddr("2001:db8:c0::5")
	in := tcp74(b, e.uplinkMAC, gwMAC, client, podAddr, 64)
	want := tcp74(b, e.epMAC, e.epHostMAC, client, podAddr, 63)
	e.measureRouter(b, e.objs.Programs.XDP, in, e.uplink, want).report(b)
}

// BenchmarkRouterFromEndpoint: a 74-byte IPv6 TCP packet from the endpoint
// to an address behind the gateway (aird_xdp_ep: source check, FIB lookup,
// hop limit, MACs, redirect to the uplink).
func BenchmarkRouterFromEndpoint(b *testing.B) {
	e := newRouterEnv(b)
	in := tcp74(b, e.epHostMAC, e.epMAC, podAddr, remoteAddr, 64)
	want := tcp74(b, gwMAC, e.uplinkMAC, podAddr, remoteAddr, 63)
	e.measureRouter(b, e.objs.Programs.Endpoint, in, e.epIfindex, want).report(b)
}
