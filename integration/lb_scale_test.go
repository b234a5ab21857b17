package integration

import (
	"bytes"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/internal/testutil"
)

// TestLBScale: the real aird programs 10,000 services of 100 backends,
// drawn from a pool of 2,000 addresses, from its configuration; then
// every VIP answers a SYN run through the attached XDP program
// (BPF_PROG_TEST_RUN) with an IPv6-in-IPv6 packet to one of that
// service's backends. It asserts correctness, not time (the time and
// memory figures are bench/'s).
func TestLBScale(t *testing.T) {
	sc := testutil.LBScale{VIPs: 10000, PerVIP: 100, Pool: 2000, Seed: 7}
	n := newNode(t)
	// The backends are routed through the peer, whose MAC is known: the
	// FIB lookup of the data plane resolves, and packets leave by XDP_TX.
	peerMAC := testutil.Run(t, "ip", "-n", n.peerNS, "-br", "link", "show", "eth0")
	mac := fieldAfter(t, peerMAC, 2)
	testutil.Run(t, "ip", "-n", n.ns, "neigh", "replace", "fd00:100:1::2", "lladdr", mac, "dev", "uplink0", "nud", "permanent")
	testutil.Run(t, "ip", "-n", n.ns, "-6", "route", "add", "fd00:b::/64", "via", "fd00:100:1::2", "dev", "uplink0")
	n.writeConfig(n.config("warn", "uplink0") + sc.TOML(nil))
	started := time.Now()
	n.startWithin(10 * time.Minute)
	t.Logf("aird READY with %d services of %d backends after %s", sc.VIPs, sc.PerVIP, time.Since(started).Round(time.Millisecond))

	prog := n.xdpProgram("uplink0")
	var ifindex int
	testutil.InNetns(t, n.ns, func() {
		l, err := netlink.LinkByName("uplink0")
		if err != nil {
			t.Fatal(err)
		}
		ifindex = l.Attrs().Index
	})
	backends := sc.Backends()
	client := netip.MustParseAddr("2001:db8:c0::5")
	seen := map[netip.Addr]bool{}
	testutil.InNetns(t, n.ns, func() {
		for i := range sc.VIPs {
			vip := sc.VIP(i)
			in := synTo(t, client, vip, uint16(1024+i%60000))
			out := make([]byte, len(in)+256)
			ret, err := prog.Run(&ebpf.RunOptions{Data: in, DataOut: out, Repeat: 1,
				Context: xdpMd{DataEnd: uint32(len(in)), IngressIfindex: uint32(ifindex)}})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			be, inner, ok := outerIP6IP6(out)
			if ret != 3 || !ok || !bytes.Equal(inner, in[14:]) && !sameButHopLimit(inner, in[14:]) {
				t.Fatalf("VIP %s: verdict %d, output %x: want XDP_TX of the SYN in IPv6-in-IPv6", vip, ret, out[:min(len(out), 120)])
			}
			if !slices.Contains(backends[i], be) {
				t.Fatalf("VIP %s went to %s, not one of its backends", vip, be)
			}
			seen[be] = true
		}
	})
	t.Logf("%d VIPs answered by one of their backends (%d distinct backends)", sc.VIPs, len(seen))
}

// xdpMd is struct xdp_md: the ingress interface the program sees.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// xdpProgram returns the program attached to dev through its pinned link.
func (n *node) xdpProgram(dev string) *ebpf.Program {
	n.t.Helper()
	l, err := link.LoadPinnedLink(filepath.Join(n.pinPath, "links", "xdp_"+dev), nil)
	if err != nil {
		n.t.Fatal(err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		n.t.Fatal(err)
	}
	p, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { p.Close() })
	return p
}

// synTo is an Ethernet frame with a TCP SYN from client to vip:80.
func synTo(t *testing.T, client, vip netip.Addr, sport uint16) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: client.AsSlice(), DstIP: vip.AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 80, SYN: true, Window: 65535}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}, ip, tcp)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// outerIP6IP6 reads an Ethernet frame holding IPv6 in IPv6: the outer
// destination and the inner packet.
func outerIP6IP6(f []byte) (netip.Addr, []byte, bool) {
	if len(f) < 14+40 || f[12] != 0x86 || f[13] != 0xdd || f[14]>>4 != 6 || f[14+6] != 41 {
		return netip.Addr{}, nil, false
	}
	plen := int(f[14+4])<<8 | int(f[14+5])
	if len(f) < 14+40+plen {
		return netip.Addr{}, nil, false
	}
	return netip.AddrFrom16([16]byte(f[14+24 : 14+40])), f[14+40 : 14+40+plen], true
}

// sameButHopLimit: the data plane decrements the inner hop limit.
func sameButHopLimit(got, sent []byte) bool {
	if len(got) != len(sent) || len(got) < 8 || got[7] != sent[7]-1 {
		return false
	}
	return bytes.Equal(got[:7], sent[:7]) && bytes.Equal(got[8:], sent[8:])
}

// fieldAfter returns field i (from 0) of a line of whitespace-separated
// fields.
func fieldAfter(t *testing.T, line string, i int) string {
	t.Helper()
	var f []string
	for _, s := range bytes.Fields([]byte(line)) {
		f = append(f, string(s))
	}
	if len(f) <= i {
		t.Fatalf("no field %d in %q", i, line)
	}
	return f[i]
}
