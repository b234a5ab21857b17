package datapath

import (
	"errors"
	"net"
	"net/netip"
	"os"
	osexec "os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// The probe routing is installed idempotently, replaces rules of its table
// that differ, and is removed completely.
func TestProbeRouting(t *testing.T) {
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetns(t, "dpr")
	testutil.Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	testutil.Run(t, "ip", "-n", ns, "-6", "rule", "add", "pref", "500", "fwmark", "0x1/0xff", "lookup", "41261")
	rules := func(fam string) []string {
		var out []string
		for _, l := range strings.Split(testutil.Run(t, "ip", "-n", ns, fam, "rule", "show"), "\n") {
			if strings.Contains(l, "lookup 41261") {
				out = append(out, strings.TrimSpace(l))
			}
		}
		return out
	}
	testutil.InNetns(t, ns, func() {
		for i := 0; i < 2; i++ {
			if err := InstallProbeRouting(); err != nil {
				t.Fatalf("install %d: %v", i, err)
			}
		}
		if ok, err := ProbeRoutingInstalled(); !ok || err != nil {
			t.Fatalf("installed = %v, %v", ok, err)
		}
	})
	for _, fam := range []string{"-4", "-6"} {
		want := []string{"1020:\tfrom all fwmark 0xa1000000/0xff000000 lookup 41261"}
		if got := rules(fam); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s rules %q, want %q", fam, got, want)
		}
		routes := testutil.Run(t, "ip", "-n", ns, fam, "route", "show", "table", "41261")
		if !strings.Contains(routes, "local default dev lo") || !strings.Contains(routes, "mtu 1280") {
			t.Errorf("%s table 41261:\n%s", fam, routes)
		}
	}
	// A marked packet to any address is local to lo, an unmarked one is not.
	if got := testutil.Run(t, "ip", "-n", ns, "-6", "route", "get", "2001:db8:100::1", "mark", "0xa1000007"); !strings.HasPrefix(got, "local 2001:db8:100::1 ") ||
		!strings.Contains(got, "dev lo table 41261") {
		t.Errorf("route of a marked probe: %s", got)
	}
	if out, err := osexec.Command("ip", "-n", ns, "-6", "route", "get", "2001:db8:100::1").CombinedOutput(); err == nil {
		t.Errorf("an unmarked packet has a route: %s", out)
	}

	testutil.InNetns(t, ns, func() {
		for i := 0; i < 2; i++ {
			if err := RemoveProbeRouting(); err != nil {
				t.Fatalf("remove %d: %v", i, err)
			}
		}
		if ok, err := ProbeRoutingInstalled(); ok || err != nil {
			t.Fatalf("installed after removal = %v, %v", ok, err)
		}
	})
	for _, fam := range []string{"-4", "-6"} {
		if got := rules(fam); len(got) != 0 {
			t.Errorf("%s rules left: %q", fam, got)
		}
		if routes := testutil.Run(t, "ip", "-n", ns, fam, "route", "show", "table", "41261"); strings.TrimSpace(routes) != "" {
			t.Errorf("%s routes left:\n%s", fam, routes)
		}
	}
}

// A socket marked for backend 7 talks to a VIP; the probe routing takes
// its packets to lo, the probe program encapsulates them to backend 7 in
// the other namespace, where they arrive as IPv6-in-IPv6 from the
// configured outer source - the first one too, which had to wait for the
// neighbour to be resolved.
func TestProbeEgressTunnelsMarkedPackets(t *testing.T) {
	e := newEnv(t)
	testutil.NetnsExec(t, e.nsA, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	d := e.open(t, ModeAuto)
	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatal(err)
	}
	lb := lbOf(t, d)
	backend := netip.MustParseAddr(addrB6)
	if err := lb.SetBackend(7, backend); err != nil {
		t.Fatal(err)
	}
	if err := d.SetSettings(bpf.Settings{Src6: netip.MustParsePrefix(addrA6 + "/128"), HashSeed: 1}); err != nil {
		t.Fatal(err)
	}
	var st ProbeEgressStatus
	testutil.InNetns(t, e.nsA, func() {
		var err error
		if st, err = d.AttachProbeEgress(); err != nil {
			t.Fatalf("AttachProbeEgress: %v", err)
		}
		if err := InstallProbeRouting(); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { testutil.InNetns(t, e.nsA, func() { _ = Teardown(e.pinPath) }) })
	if st.Interface != "lo" || st.Adopted || st.LinkID == 0 || st.FIBIfindex == 0 {
		t.Fatalf("probe egress status %+v", st)
	}
	if _, err := os.Stat(e.pinPath + "/links/tcx_lo"); err != nil {
		t.Fatalf("probe link not pinned: %v", err)
	}

	// Backend side: a raw socket for next header 41 sees the tunnel.
	var raw net.PacketConn
	testutil.InNetns(t, e.nsB, func() {
		var err error
		if raw, err = net.ListenPacket("ip6:41", "::"); err != nil {
			t.Fatal(err)
		}
	})
	defer raw.Close()
	vip := netip.MustParseAddrPort("[2001:db8:100::1]:7777")
	testutil.InNetns(t, e.nsA, func() {
		d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(addrA6)},
			Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(bpf.ProbeMark(7)))
				})
				return errors.Join(err, serr)
			}}
		c, err := d.Dial("udp", vip.String())
		if err != nil {
			t.Fatalf("dial the VIP with the probe mark: %v", err)
		}
		defer c.Close()
		// One packet, sent while the backend's neighbour entry does not
		// exist yet: it waits for resolution and must then leave with
		// the right addresses.
		if _, err := c.Write([]byte("probe")); err != nil {
			t.Fatalf("send: %v", err)
		}
	})
	buf := make([]byte, 2048)
	_ = raw.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := raw.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no IPv6-in-IPv6 packet reached the backend: %v", err)
	}
	if from.String() != addrA6 {
		t.Errorf("outer source %s, want %s", from, addrA6)
	}
	p := gopacket.NewPacket(buf[:n], layers.LayerTypeIPv6, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if ip == nil || udp == nil || ip.SrcIP.String() != addrA6 || ip.DstIP.String() != vip.Addr().String() ||
		uint16(udp.DstPort) != vip.Port() || string(udp.Payload) != "probe" {
		t.Fatalf("inner packet: %v", p)
	}
}

// A restarted datapath adopts the pinned probe link (same link, new
// program); Teardown detaches it and removes the probe routing.
func TestProbeEgressAdoptedAndTornDown(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, ModeAuto)
	var first ProbeEgressStatus
	testutil.InNetns(t, e.nsA, func() {
		var err error
		if first, err = d.AttachProbeEgress(); err != nil {
			t.Fatal(err)
		}
		if again, err := d.AttachProbeEgress(); err != nil || again.LinkID != first.LinkID {
			t.Fatalf("second AttachProbeEgress: %+v, %v", again, err)
		}
		if err := InstallProbeRouting(); err != nil {
			t.Fatal(err)
		}
	})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := e.open(t, ModeAuto)
	testutil.InNetns(t, e.nsA, func() {
		st, err := d2.AttachProbeEgress()
		if err != nil {
			t.Fatal(err)
		}
		if !st.Adopted || st.LinkID != first.LinkID || st.ProgramID == first.ProgramID {
			t.Fatalf("after restart %+v, first %+v: want the same link adopted with the new program", st, first)
		}
	})
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.InNetns(t, e.nsA, func() {
		if err := Teardown(e.pinPath); err != nil {
			t.Fatal(err)
		}
		if ok, err := ProbeRoutingInstalled(); ok || err != nil {
			t.Fatalf("probe routing after teardown: %v, %v", ok, err)
		}
	})
	if l, err := link.NewFromID(link.ID(first.LinkID)); err == nil {
		l.Close()
		t.Fatal("probe link still exists after teardown")
	}
}

// A restarted datapath attaching the probe program before its uplinks (as
// the daemon does) leaves the probe program's FIB interface as the earlier
// process wrote it: tunnelled probes keep working through the restart.
func TestProbeEgressKeepsFIBInterfaceUntilUplinks(t *testing.T) {
	e := newEnv(t)
	testutil.NetnsExec(t, e.nsA, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	d := e.open(t, ModeAuto)
	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatal(err)
	}
	var first ProbeEgressStatus
	testutil.InNetns(t, e.nsA, func() {
		var err error
		if first, err = d.AttachProbeEgress(); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { testutil.InNetns(t, e.nsA, func() { _ = Teardown(e.pinPath) }) })
	if first.FIBIfindex == 0 {
		t.Fatalf("probe FIB interface 0 with an uplink attached: %+v", first)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := e.open(t, ModeAuto)
	testutil.InNetns(t, e.nsA, func() {
		st, err := d2.AttachProbeEgress()
		if err != nil {
			t.Fatal(err)
		}
		if st.FIBIfindex != first.FIBIfindex {
			t.Fatalf("probe FIB interface %d before the uplinks of the new process, want %d as before", st.FIBIfindex, first.FIBIfindex)
		}
	})
	if err := e.setUplinks(t, d2, e.devA); err != nil {
		t.Fatal(err)
	}
	testutil.InNetns(t, e.nsA, func() {
		if st, ok := d2.ProbeEgress(); !ok || st.FIBIfindex != first.FIBIfindex {
			t.Fatalf("after the uplinks: %+v, %v; want FIB interface %d", st, ok, first.FIBIfindex)
		}
	})
}
