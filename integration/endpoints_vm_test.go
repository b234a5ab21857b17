package integration

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

// guest is a minimal IPv6 host on the far side of a tap: it answers
// neighbour solicitations for its address and echo requests to it, and can
// send an echo request from any source.
type guest struct {
	t    *testing.T
	tap  *os.File
	mac  net.HardwareAddr
	addr netip.Addr

	mu      sync.Mutex
	gwMAC   net.HardwareAddr // the host side's MAC, from the frames it sends
	replies int              // echo replies received
}

// openTap attaches to the existing tap dev in namespace ns.
func openTap(t *testing.T, ns, dev string) *os.File {
	t.Helper()
	var f *os.File
	testutil.InNetns(t, ns, func() {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("open /dev/net/tun: %v", err)
		}
		var ifr struct {
			name  [unix.IFNAMSIZ]byte
			flags uint16
			_     [22]byte
		}
		copy(ifr.name[:], dev)
		ifr.flags = unix.IFF_TAP | unix.IFF_NO_PI
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
			unix.Close(fd)
			t.Fatalf("TUNSETIFF %s: %v", dev, errno)
		}
		f = os.NewFile(uintptr(fd), dev)
	})
	t.Cleanup(func() { f.Close() })
	return f
}

func (g *guest) run() {
	buf := make([]byte, 2048)
	for {
		n, err := g.tap.Read(buf)
		if err != nil {
			return
		}
		g.handle(gopacket.NewPacket(append([]byte(nil), buf[:n]...), layers.LayerTypeEthernet, gopacket.Default))
	}
}

func (g *guest) handle(p gopacket.Packet) {
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	ic, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if eth == nil || ip == nil || ic == nil {
		return
	}
	g.mu.Lock()
	g.gwMAC = eth.SrcMAC
	g.mu.Unlock()
	switch ic.TypeCode.Type() {
	case layers.ICMPv6TypeNeighborSolicitation:
		ns, _ := p.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
		if ns == nil || !ns.TargetAddress.Equal(g.addr.AsSlice()) {
			return
		}
		na := &layers.ICMPv6NeighborAdvertisement{TargetAddress: ns.TargetAddress, Flags: 0x60,
			Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: g.mac}}}
		g.send(eth.SrcMAC, g.addr, netip.MustParseAddr(ip.SrcIP.String()), 255,
			layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0), na)
	case layers.ICMPv6TypeEchoRequest:
		if !ip.DstIP.Equal(g.addr.AsSlice()) {
			return
		}
		echo, _ := p.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo)
		if echo == nil {
			return
		}
		g.send(eth.SrcMAC, g.addr, netip.MustParseAddr(ip.SrcIP.String()), 64,
			layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoReply, 0), echo, gopacket.Payload(echo.Payload))
	case layers.ICMPv6TypeEchoReply:
		g.mu.Lock()
		g.replies++
		g.mu.Unlock()
	}
}

// send writes an ICMPv6 frame src -> dst to the host.
func (g *guest) send(dstMAC net.HardwareAddr, src, dst netip.Addr, hop uint8, tc layers.ICMPv6TypeCode, ls ...gopacket.SerializableLayer) {
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: hop, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	ic := &layers.ICMPv6{TypeCode: tc}
	_ = ic.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	all := append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: g.mac, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv6}, ip, ic}, ls...)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, all...); err != nil {
		g.t.Errorf("serialize: %v", err)
		return
	}
	_, _ = g.tap.Write(buf.Bytes())
}

func (g *guest) ping(src, dst netip.Addr) {
	g.mu.Lock()
	gw := g.gwMAC
	g.mu.Unlock()
	g.send(gw, src, dst, 64, layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0),
		&layers.ICMPv6Echo{Identifier: 7, SeqNumber: 1}, gopacket.Payload("guest"))
}

// TestVMEndpoint: a tap whose far side is a guest (this test) becomes an
// endpoint with an address from the vm pool; the outside reaches it
// (first through the kernel, which resolves the guest's MAC, then through
// XDP once aird learned the MAC); the guest reaches the outside; a spoofed
// source from the guest is dropped and counted.
func TestVMEndpoint(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("debug", "uplink0") + `
[[ipam.pools]]
name = "vms"
kind = "vm"
prefixes = ["fd00:210::/64"]
`)
	testutil.Run(t, "ip", "-n", n.peerNS, "-6", "route", "add", "fd00:210::/64", "via", "fd00:100:1::1")
	testutil.RequireCommand(t, "ethtool")
	testutil.NetnsExec(t, n.peerNS, "ethtool", "-K", "eth0", "gro", "on", "tx", "off")
	testutil.Run(t, "ip", "-n", n.ns, "tuntap", "add", "dev", "tapvm0", "mode", "tap")
	testutil.WaitIPv6Ready(t, n.ns, n.peerNS)
	n.start()
	g := &guest{t: t, tap: openTap(t, n.ns, "tapvm0"), mac: net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}}
	testutil.Run(t, "ip", "-n", n.ns, "link", "set", "tapvm0", "up")

	out, errs, code := n.airctl("endpoint", "add", "vm1", "--tap", "tapvm0")
	if code != 0 {
		t.Fatalf("endpoint add --tap: %d %s%s", code, out, errs)
	}
	if !strings.Contains(out, "ip -6 route add default via fe80::1 dev eth0") {
		t.Fatalf("no guest configuration printed:\n%s", out)
	}
	ep := n.endpoint("vm1")
	if ep.Kind != "vm" || len(ep.Addresses) != 1 || !netip.MustParsePrefix("fd00:210::/64").Contains(ep.Addresses[0]) || ep.MAC != "" {
		t.Fatalf("vm endpoint: %+v", ep)
	}
	g.addr = ep.Addresses[0]
	go g.run()

	ping := func(count string) string {
		out, err := exec.Command("ip", "netns", "exec", n.peerNS, "ping", "-6", "-c", count, "-i", "0.2", "-W", "2", g.addr.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("ping the guest: %v\n%s", err, out)
		}
		return string(out)
	}
	ping("2")
	if !testutil.WaitFor(5*time.Second, func() bool { return n.endpoint("vm1").MAC == g.mac.String() }) {
		t.Fatalf("guest MAC not learned: %+v", n.endpoint("vm1"))
	}
	before := n.endpoint("vm1").Counters
	ping("5")
	after := n.endpoint("vm1").Counters
	if after.RxPackets-before.RxPackets < 5 || after.TxPackets-before.TxPackets < 5 {
		t.Fatalf("XDP did not carry the guest's traffic once its MAC was known: before %+v after %+v", before, after)
	}

	// The guest pings out; then it pings from an address not its own.
	g.ping(g.addr, netip.MustParseAddr("fd00:100:1::2"))
	if !testutil.WaitFor(3*time.Second, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.replies > 0 }) {
		t.Fatalf("the guest's ping to the outside got no reply")
	}
	g.ping(netip.MustParseAddr("fd00:210::bad"), netip.MustParseAddr("fd00:100:1::2"))
	if !testutil.WaitFor(3*time.Second, func() bool { return n.endpoint("vm1").Counters.DropSpoofed > 0 }) {
		t.Fatalf("spoofed source not dropped: %+v", n.endpoint("vm1").Counters)
	}

	// Delete: the tap stays (it is the VM's), without aird's routes and
	// gateway addresses.
	if _, errs, code := n.airctl("endpoint", "del", "vm1"); code != 0 {
		t.Fatalf("endpoint del: %s", errs)
	}
	if out := testutil.NetnsExec(t, n.ns, "ip", "addr", "show", "dev", "tapvm0"); strings.Contains(out, "fe80::1/64") || strings.Contains(out, "169.254.1.1") {
		t.Fatalf("gateway addresses left on the tap:\n%s", out)
	}
	if out := testutil.NetnsExec(t, n.ns, "ip", "-6", "route", "show", g.addr.String()); strings.TrimSpace(out) != "" {
		t.Fatalf("route to the guest left: %s", out)
	}
}
