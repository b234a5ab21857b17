package bpf

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

// The router's test network, inside the lb environment's namespace (its
// uplink, gateway and backend routes):
//
//	ep1 host side (ep1MAC) <-> container side (c1MAC)  2001:db8:aa::10, 10.200.0.10; VIPs vip6, vip4
//	ep2 host side (ep2MAC) <-> container side (c2MAC)  2001:db8:aa::20
//	ep3 (a tap-like endpoint whose MAC is not known)   2001:db8:aa::30
var (
	ep1MAC = net.HardwareAddr{0x02, 0xee, 0, 0, 0, 0x01}
	c1MAC  = net.HardwareAddr{0x02, 0xcc, 0, 0, 0, 0x01}
	ep2MAC = net.HardwareAddr{0x02, 0xee, 0, 0, 0, 0x02}
	c2MAC  = net.HardwareAddr{0x02, 0xcc, 0, 0, 0, 0x02}

	pod1  = "2001:db8:aa::10"
	pod14 = "10.200.0.10"
	pod2  = "2001:db8:aa::20"
	pod3  = "2001:db8:aa::30"
	far6  = "2001:db8:be::77" // beyond the gateway
)

type routerEnv struct {
	*lbEnv
	router     *Router
	links      map[string]routerLink // by test name: "ep1", "ep2", "ep3"
	endpoints  map[string]Endpoint
	uplinkLive string // the uplink peer, receiving what is redirected to the uplink
}

type routerLink struct {
	host, peer string
	ifindex    int
}

func newRouterEnv(t testing.TB) *routerEnv {
	t.Helper()
	e := &routerEnv{lbEnv: newLBEnv(t), links: map[string]routerLink{}, endpoints: map[string]Endpoint{}}
	e.router = NewRouter(e.objs.Router)
	e.must(t, e.node.SetUplinks([]Uplink{{Ifindex: e.ifindex}}))
	for _, l := range []struct {
		name          string
		hostMAC, cMAC net.HardwareAddr
	}{{"ep1", ep1MAC, c1MAC}, {"ep2", ep2MAC, c2MAC}, {"ep3", nil, nil}} {
		host, peer := testutil.UniqueName("rh"), testutil.UniqueName("rc")
		testutil.Veth(t, host, e.ns, peer, e.ns)
		if l.hostMAC != nil {
			testutil.Run(t, "ip", "-n", e.ns, "link", "set", host, "address", l.hostMAC.String())
			testutil.Run(t, "ip", "-n", e.ns, "link", "set", peer, "address", l.cMAC.String())
		}
		for _, kv := range []string{"net.ipv6.conf." + host + ".forwarding=1", "net.ipv4.conf." + host + ".forwarding=1"} {
			testutil.NetnsExec(t, e.ns, "sysctl", "-q", "-w", kv)
		}
		e.links[l.name] = routerLink{host: host, peer: peer, ifindex: e.linkIndex(t, host)}
	}
	// Frames redirected into a veth are received only when its peer runs
	// NAPI: GRO on (the router enables it on endpoints the same way).
	for _, dev := range []string{e.peer, e.links["ep1"].peer, e.links["ep2"].peer} {
		testutil.Run(t, "ip", "netns", "exec", e.ns, "ethtool", "-K", dev, "gro", "on")
	}
	hostMAC := func(name string) net.HardwareAddr {
		var mac net.HardwareAddr
		testutil.InNetns(t, e.ns, func() {
			l, err := netlink.LinkByName(e.links[name].host)
			if err != nil {
				t.Fatal(err)
			}
			mac = l.Attrs().HardwareAddr
		})
		return mac
	}
	e.endpoints["ep1"] = Endpoint{ID: 1, Ifindex: e.links["ep1"].ifindex, MAC: c1MAC, HostMAC: ep1MAC, MTU: 1500,
		Addrs: []netip.Addr{netip.MustParseAddr(pod1), netip.MustParseAddr(pod14)},
		VIPs:  []netip.Addr{netip.MustParseAddr(vip6), netip.MustParseAddr(vip4)}}
	e.endpoints["ep2"] = Endpoint{ID: 2, Ifindex: e.links["ep2"].ifindex, MAC: c2MAC, HostMAC: ep2MAC, MTU: 1500,
		Addrs: []netip.Addr{netip.MustParseAddr(pod2)}}
	e.endpoints["ep3"] = Endpoint{ID: 3, Ifindex: e.links["ep3"].ifindex, HostMAC: hostMAC("ep3"), MTU: 1500,
		Addrs: []netip.Addr{netip.MustParseAddr(pod3)}}
	for _, ep := range e.endpoints {
		e.must(t, e.router.SetEndpoint(ep, nil))
	}
	return e
}

// resetRouteCache empties every CPU's route cache, so a case starts with
// FIB lookups.
func (e *routerEnv) resetRouteCache(t testing.TB) {
	t.Helper()
	n, err := ebpf.PossibleCPU()
	e.must(t, err)
	m := e.objs.Router.RouteCache
	keys := make([]uint32, m.MaxEntries())
	for k := range keys {
		keys[k] = uint32(k)
	}
	_, err = m.BatchUpdate(keys, make([]DatapathRouteCacheEntry, n*len(keys)), nil)
	e.must(t, err)
}

func (e *routerEnv) linkIndex(t testing.TB, name string) int {
	t.Helper()
	var idx int
	testutil.InNetns(t, e.ns, func() {
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		idx = l.Attrs().Index
	})
	return idx
}

// routerCase is one row of a router packet table.
type routerCase struct {
	name  string
	setup func(t *testing.T, e *routerEnv)
	// from is "" for a packet arriving on the uplink (aird_xdp), or the
	// endpoint that sent it (aird_xdp_ep on its host side).
	from    string
	packet  func(t *testing.T, e *routerEnv) (in, want []byte) // want nil: unchanged
	verdict uint32
	// target is the link a redirected frame must come out of ("uplink",
	// "ep1", ...), checked by running the packet once more in live mode and
	// capturing it on the link's peer.
	target string
	events map[DatapathRouterStat]uint64
	drops  map[DatapathDropReason]uint64
	// counters is the change of the endpoints' counters.
	counters map[string]DatapathEndpointCounters
}

type rs = map[DatapathRouterStat]uint64

const (
	rDelivered = DatapathRouterStatROUTER_STAT_DELIVERED
	rForwarded = DatapathRouterStatROUTER_STAT_FORWARDED
)

func runRouterCases(t *testing.T, cases []routerCase) {
	t.Helper()
	e := newRouterEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.resetRouteCache(t)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			in, want := tc.packet(t, e)
			if want == nil {
				want = in
			}
			prog, ingress := e.objs.Programs.XDP, e.ifindex
			if tc.from != "" {
				prog, ingress = e.objs.Programs.Endpoint, e.links[tc.from].ifindex
			}
			before := e.routerSnap(t)
			verdict, out := e.runProg(t, prog, in, ingress)
			after := e.routerSnap(t)
			checkOutput(t, verdict, out, tc.verdict, want)
			e.checkRouterDeltas(t, before, after, tc)
			if tc.target != "" {
				e.checkTarget(t, prog, in, ingress, tc.target, want)
			}
		})
	}
}

func (e *routerEnv) runProg(t testing.TB, prog *ebpf.Program, in []byte, ingress int) (uint32, []byte) {
	t.Helper()
	opts := &ebpf.RunOptions{Data: bytes.Clone(in), DataOut: make([]byte, len(in)+512), Repeat: 1,
		Context: xdpMd{DataEnd: uint32(len(in)), IngressIfindex: uint32(ingress)}}
	var ret uint32
	var err error
	// On one CPU: the route cache is per CPU, as a NIC queue keeps a
	// flow on one.
	testutil.InNetns(t, e.ns, func() { onFirstCPU(t, func() { ret, err = prog.Run(opts) }) })
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return ret, opts.DataOut
}

// checkTarget runs in once more with live frames (the kernel carries out
// the redirect) and expects want on the peer of the target link.
func (e *routerEnv) checkTarget(t *testing.T, prog *ebpf.Program, in []byte, ingress int, target string, want []byte) {
	t.Helper()
	peer := e.peer
	if target != "uplink" {
		peer = e.links[target].peer
	}
	testutil.InNetns(t, e.ns, func() {
		fd := capture(t, peer)
		defer unix.Close(fd)
		opts := &ebpf.RunOptions{Data: bytes.Clone(in), Repeat: 1, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
			Context: xdpMd{DataEnd: uint32(len(in)), IngressIfindex: uint32(ingress)}}
		if _, err := prog.Run(opts); err != nil {
			t.Fatalf("live run: %v", err)
		}
		buf := make([]byte, 4096)
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue // timeout: try until the deadline
			}
			if bytes.Equal(buf[:n], want) {
				return
			}
		}
		t.Errorf("the frame did not come out of %s (peer %s)", target, peer)
	})
}

// capture opens a packet socket on dev receiving every frame, with a short
// read timeout.
func capture(t testing.TB, dev string) int {
	t.Helper()
	l, err := netlink.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons16(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons16(unix.ETH_P_ALL), Ifindex: l.Attrs().Index}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	tv := unix.Timeval{Usec: 200000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	return fd
}

func htons16(v uint16) uint16 { return v<<8 | v>>8 }

type routerSnapshot struct {
	events   map[DatapathRouterStat]uint64
	drops    map[DatapathDropReason]uint64
	counters map[string]DatapathEndpointCounters
}

func (e *routerEnv) routerSnap(t testing.TB) routerSnapshot {
	t.Helper()
	s := routerSnapshot{events: map[DatapathRouterStat]uint64{}, drops: map[DatapathDropReason]uint64{},
		counters: map[string]DatapathEndpointCounters{}}
	for st := DatapathRouterStat(0); st < DatapathRouterStatROUTER_STAT_MAX; st++ {
		s.events[st] = sumU64(t, e.objs.Router.Events, uint32(st))
	}
	pc := pipelineCounters(t, e.objs.Pipeline.Stats)
	for _, r := range DropReasons() {
		s.drops[r] = pc.Drops[r]
	}
	for name, ep := range e.endpoints {
		c, err := e.router.Counters(ep.ID)
		e.must(t, err)
		s.counters[name] = c
	}
	return s
}

func (e *routerEnv) checkRouterDeltas(t *testing.T, before, after routerSnapshot, tc routerCase) {
	t.Helper()
	var bad []string
	for st, b := range before.events {
		if d := after.events[st] - b; d != tc.events[st] {
			bad = append(bad, st.String()+": "+itoa(d)+" want "+itoa(tc.events[st]))
		}
	}
	for r, b := range before.drops {
		if d := after.drops[r] - b; d != tc.drops[r] {
			bad = append(bad, "drop "+r.String()+": "+itoa(d)+" want "+itoa(tc.drops[r]))
		}
	}
	for name, b := range before.counters {
		a := after.counters[name]
		d := DatapathEndpointCounters{RxPackets: a.RxPackets - b.RxPackets, RxBytes: a.RxBytes - b.RxBytes,
			TxPackets: a.TxPackets - b.TxPackets, TxBytes: a.TxBytes - b.TxBytes,
			DropSpoofed: a.DropSpoofed - b.DropSpoofed, DropDecap: a.DropDecap - b.DropDecap}
		if d != tc.counters[name] {
			bad = append(bad, name+" counters: "+strings.TrimSpace(fmtCounters(d))+" want "+fmtCounters(tc.counters[name]))
		}
	}
	if len(bad) > 0 {
		t.Errorf("counter deltas: %s", strings.Join(bad, "; "))
	}
}

func fmtCounters(c DatapathEndpointCounters) string {
	return "rx " + itoa(c.RxPackets) + "/" + itoa(c.RxBytes) + " tx " + itoa(c.TxPackets) + "/" + itoa(c.TxBytes) +
		" spoofed " + itoa(c.DropSpoofed) + " decap " + itoa(c.DropDecap)
}

// rx and tx are counter deltas of one packet of n bytes.
func rx(n int) DatapathEndpointCounters {
	return DatapathEndpointCounters{RxPackets: 1, RxBytes: uint64(n)}
}

func tx(n int) DatapathEndpointCounters {
	return DatapathEndpointCounters{TxPackets: 1, TxBytes: uint64(n)}
}

// tcpTo builds a TCP packet src -> dst with a hop limit / TTL (IPv4 when
// dst is IPv4).
func tcpTo(t testing.TB, src, dst string, hop uint8, payload int) []byte {
	t.Helper()
	var l3 gopacket.NetworkLayer
	var sl gopacket.SerializableLayer
	if strings.Contains(dst, ":") {
		ip := ip6(src, dst, layers.IPProtocolTCP, hop)
		l3, sl = ip, ip
	} else {
		ip := ip4(src, dst, layers.IPProtocolTCP, hop)
		l3, sl = ip, ip
	}
	return ipPacket(t, sl, tcpL(l3, 33000, 80, ack), gopacket.Payload(bytes.Repeat([]byte{0x77}, payload)))
}
