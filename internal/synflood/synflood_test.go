package synflood

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

// TestRunSendsBoundedValidSYNs: every frame the generator sends arrives
// on the veth's peer as a TCP SYN (or, with ACK, a bare ACK) to the
// destination, from a source inside the prefix, with correct checksums,
// and it sends exactly Count frames.
func TestRunSendsBoundedValidSYNs(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetns(t, "synf")
	a, b := testutil.UniqueName("sfa"), testutil.UniqueName("sfb")
	testutil.Veth(t, a, ns, b, ns)
	for _, c := range []struct {
		dst, sources string
		ack          bool
	}{{"2001:db8:300::10", "2001:db8:dead::/48", false}, {"198.51.100.10", "203.0.113.0/24", false},
		{"2001:db8:300::10", "2001:db8:dead::/48", true}} {
		const count = 2000
		var frames [][]byte
		testutil.InNetns(t, ns, func() {
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			ifi, err := net.InterfaceByName(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
				t.Fatal(err)
			}
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
			tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
			_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
			res, err := Run(context.Background(), Options{Interface: a, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
				SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: netip.MustParseAddr(c.dst), DstPort: 8080,
				Sources: netip.MustParsePrefix(c.sources), Count: count, Seed: 1, ACK: c.ack})
			if err != nil || res.Sent != count {
				t.Fatalf("Run: sent %d, %v", res.Sent, err)
			}
			buf := make([]byte, 2048)
			for {
				n, _, err := unix.Recvfrom(fd, buf, 0)
				if err != nil {
					break
				}
				if n >= 14 && buf[0] == 2 && buf[5] == 2 {
					frames = append(frames, append([]byte(nil), buf[:n]...))
				}
			}
		})
		if len(frames) != count {
			t.Fatalf("%s: %d frames arrived, want %d", c.dst, len(frames), count)
		}
		prefix := netip.MustParsePrefix(c.sources)
		srcs := map[netip.Addr]bool{}
		for _, f := range frames {
			p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if tcp == nil || tcp.SYN == c.ack || tcp.ACK != c.ack || tcp.RST || tcp.FIN || tcp.DstPort != 8080 {
				t.Fatalf("not a bare %s to port 8080: %v", map[bool]string{false: "SYN", true: "ACK"}[c.ack], p)
			}
			var src, dst netip.Addr
			var nl gopacket.NetworkLayer
			if ip6, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
				src, _ = netip.AddrFromSlice(ip6.SrcIP)
				dst, _ = netip.AddrFromSlice(ip6.DstIP)
				nl = ip6
			} else if ip4, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
				src, _ = netip.AddrFromSlice(ip4.SrcIP.To4())
				dst, _ = netip.AddrFromSlice(ip4.DstIP.To4())
				nl = ip4
				// A correct header checksum makes the header sum to 0xffff.
				if s := fold(sum16(f[14:34])); s != 0xffff {
					t.Fatalf("ipv4 header checksum wrong: header sums to %#x", s)
				}
			}
			if !prefix.Contains(src) || dst != netip.MustParseAddr(c.dst) {
				t.Fatalf("%s -> %s: source outside %s or wrong destination", src, dst, prefix)
			}
			srcs[src] = true
			want := tcp.Checksum
			_ = tcp.SetNetworkLayerForChecksum(nl)
			buf := gopacket.NewSerializeBuffer()
			if err := tcp.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
				t.Fatal(err)
			}
			var got layers.TCP
			if err := got.DecodeFromBytes(buf.Bytes(), gopacket.NilDecodeFeedback); err != nil || got.Checksum != want {
				t.Fatalf("tcp checksum %#x, want %#x", want, got.Checksum)
			}
		}
		want := count * 9 / 10
		if host := prefix.Addr().BitLen() - prefix.Bits(); host < 16 {
			want = min(want, (1<<host)*9/10)
		}
		if len(srcs) < want {
			t.Errorf("%d distinct sources in %d frames from %s: not random", len(srcs), count, prefix)
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	good := Options{Interface: "x", DstMAC: make(net.HardwareAddr, 6), SrcMAC: make(net.HardwareAddr, 6),
		Dst: netip.MustParseAddr("2001:db8::1"), Sources: netip.MustParsePrefix("2001:db8:dead::/48"), Count: 1}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Options){
		"no count":        func(o *Options) { o.Count = 0 },
		"too many":        func(o *Options) { o.Count = MaxCount + 1 },
		"family mismatch": func(o *Options) { o.Sources = netip.MustParsePrefix("10.0.0.0/8") },
		"short mac":       func(o *Options) { o.DstMAC = o.DstMAC[:5] },
	} {
		o := good
		mut(&o)
		if o.validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
