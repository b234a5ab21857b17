package bench

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/aird-net/aird/internal/testutil"
)

// The decap benchmark's node: its underlay address is the bench uplink's,
// the load balancers' encap sources are one of 64 tunnel-source prefixes
// (so the LPM trie is not trivially small), and the VIP it serves as a
// backend is on lo and among 1,000 local addresses.
const (
	decapNode    = "2001:db8:ff::1"
	decapLB      = "2001:db8:5::99"
	decapServed  = "2001:db8:300::10"
	decapForeign = "2001:db8:be::77"
	decapHostile = "2001:db8:6666::1"
)

const xdpPass, xdpDrop = 2, 1

// tunnelFrame is a 134-byte IPv6-in-IPv6 frame: a 74-byte TCP packet from a
// client to inner, sent by src to the node.
func tunnelFrame(b testing.TB, src, inner string) []byte {
	in := &layers.IPv6{Version: 6, HopLimit: 63, NextHeader: layers.IPProtocolTCP,
		SrcIP: net.ParseIP("2001:db8:c0::5"), DstIP: net.ParseIP(inner)}
	l4 := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1, Ack: 1, ACK: true, Window: 65535}
	_ = l4.SetNetworkLayerForChecksum(in)
	out := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(decapNode)}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
			EthernetType: layers.EthernetTypeIPv6}, out, in, l4)
	if err != nil {
		b.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// BenchmarkDecap: tunnel packets to the node, each path through the decap
// stage's checks (tunnel source: an LPM lookup; inner destination: hash
// lookups) in multiples of the floor. bench/decap.sh also runs it against
// the build that asks the FIB about the inner destination instead.
func BenchmarkDecap(b *testing.B) {
	for _, c := range []struct {
		name, src, inner string
		verdict          uint32
	}{
		{"accepted", decapLB, decapServed, xdpPass},
		{"accepted-node-address", decapLB, decapNode, xdpPass},
		{"untrusted-source", decapHostile, decapServed, xdpDrop},
		{"foreign-destination", decapLB, decapForeign, xdpDrop},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, 0) // no VIP: the decap stage alone
			testutil.Addr(b, e.ns, "lo", decapServed+"/128")
			must(b, e.node.SetAddrs([]netip.Addr{netip.MustParseAddr(decapNode)}))
			var srcs []netip.Prefix
			for i := range 64 {
				a := netip.MustParseAddr("2001:db8:5::").As16()
				a[5] = byte(i) // 2001:db8:5::/64, 2001:db8:5:100::/64, ...
				srcs = append(srcs, netip.PrefixFrom(netip.AddrFrom16(a), 64))
			}
			if e.coll.Maps["tunnel_sources"] == nil {
				// The object before the tunnel checks (bench/decap.sh):
				// it decapsulates everything, so only "accepted" applies.
				pkt := tunnelFrame(b, c.src, c.inner)
				measure(b, e, func(int) []byte { return pkt }, xdpPass).report(b)
				return
			}
			must(b, e.node.SetTunnelSources(srcs))
			local := []netip.Addr{netip.MustParseAddr(decapServed)}
			for i := range 999 {
				a := netip.MustParseAddr("2001:db8:301::").As16()
				a[14], a[15] = byte(i>>8), byte(i)
				local = append(local, netip.AddrFrom16(a))
			}
			must(b, e.node.SetLocalAddrs(local))
			pkt := tunnelFrame(b, c.src, c.inner)
			measure(b, e, func(int) []byte { return pkt }, c.verdict).report(b)
		})
	}
}
