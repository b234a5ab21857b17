package integration

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// The IPv4 lab is lbLab (lb_e2e_test.go) with IPv4 next to IPv6 on the
// client and LB links and on the backends, which keep their IPv6 underlay:
//
//	client c0 10.0.1.2 ── l0 10.0.1.1 [LB] l1 10.0.2.1 ── e0 10.0.2.2 [b1]
//	                                       l2 10.0.3.1 ── e0 10.0.3.2 [b2] (+ 10.0.3.3, fd00:3::3)
//
// Services on the LB, besides "web" (fd00:300::10 port 8080):
//
//	web4    10.200.0.10:8080  -> fd00:2::2, fd00:3::2  IPv4-in-IPv6; nameServer
//	info4   10.200.0.10:8081  -> fd00:2::2, fd00:3::2  IPv4-in-IPv6; infoServer
//	info6   fd00:300::10:8081 -> fd00:2::2, fd00:3::2  IPv6-in-IPv6; infoServer
//	probe6  10.200.0.11:8080  -> fd00:3::3             IPv4-in-IPv6, not decapsulated
//	probe4  10.200.0.12:8080  -> 10.0.3.3              IPv4-in-IPv4, not decapsulated
//
// The services added here have no health check: these tests are about the
// data plane, and every backend takes new flows from the start, whatever
// the health checker does (TestLoadBalancerEndToEnd covers it).
//
// The backends have 10.200.0.10 on lo and an IPv4 default route back over
// the LB node, so they answer IPv4 clients directly. fd00:3::3 and 10.0.3.3
// are addresses of b2 that are not its underlay: b2's aird does not
// decapsulate packets to them, so a packet socket on b2's e0 sees the LB's
// outer headers there (for the underlay addresses it sees the packets only
// after XDP took the outer header off).
const (
	labClient4   = "10.0.1.2"
	labVIP4      = "10.200.0.10"
	labProbe6VIP = "10.200.0.11"
	labProbe4VIP = "10.200.0.12"
	labProbe6Dst = "fd00:3::3"
	labProbe4Dst = "10.0.3.3"
	// labSrc6 is the encap-source-prefix newLBLab configures; labSrc4 the
	// encap-source-prefix4 added here.
	labSrc6 = "fd00:1::1:0/112"
	labSrc4 = "10.0.9.0/24"
	// labLBUnderlay4 is the LB's IPv4 underlay address where a lab adds
	// one: the IPv4 outer source without encap-source-prefix4.
	labLBUnderlay4 = "10.0.1.1"
	// labHashSeed is internal/daemon's lbHashSeed, the flow hash seed of
	// every aird: with it the test predicts each flow's outer source.
	labHashSeed = 0x61697264
	infoPort    = 8081
)

// newLBLabV4 builds the IPv4 lab; linkMTU, if not 0, is the MTU of both
// LB-backend links (both ends).
func newLBLabV4(t *testing.T, linkMTU int) *lbLab {
	wire := func(l *lbLab) {
		testutil.Addr(t, l.client, "c0", labClient4+"/24")
		// The LB answers some client packets itself (ICMP too big) by
		// XDP_TX on l0, which a real NIC sends like any frame. A veth
		// queues it for its peer but wakes the peer's NAPI only when the
		// peer has an XDP program (veth_xdp_flush): without one l0 counts
		// rx_queue_0_xdp_tx_errors (peer GRO off) or queues the frames
		// for good (GRO on), and the client never sees them.
		attachXDPPass(t, l.client, "c0")
		testutil.Run(t, "ip", "-n", l.client, "-4", "route", "add", "10.200.0.0/24", "via", "10.0.1.1")
		testutil.Addr(t, l.lbNS, "l0", "10.0.1.1/24")
		// bpf_fib_lookup forwards IPv4 only with forwarding on; the LB
		// node also routes the backends' replies to the client.
		testutil.NetnsExec(t, l.lbNS, "sysctl", "-q", "-w", "net.ipv4.conf.all.forwarding=1")
		for i, ns := range l.backendNS {
			lbDev, net4 := fmt.Sprintf("l%d", i+1), fmt.Sprintf("10.0.%d", i+2)
			testutil.Addr(t, l.lbNS, lbDev, net4+".1/24")
			testutil.Addr(t, ns, "e0", net4+".2/24")
			testutil.Run(t, "ip", "-n", ns, "-4", "route", "add", "default", "via", net4+".1")
			testutil.Addr(t, ns, "lo", labVIP4+"/32")
			if linkMTU > 0 {
				testutil.Run(t, "ip", "-n", l.lbNS, "link", "set", lbDev, "mtu", strconv.Itoa(linkMTU))
				testutil.Run(t, "ip", "-n", ns, "link", "set", "e0", "mtu", strconv.Itoa(linkMTU))
			}
			infoServer(t, ns, fmt.Sprintf("b%d", i+1))
		}
		testutil.Addr(t, l.backendNS[1], "e0", labProbe6Dst+"/64")
		testutil.Addr(t, l.backendNS[1], "e0", labProbe4Dst+"/24")
	}
	l := newLBLabWith(t, lbLabOptions{
		wire:       wire,
		lbUnderlay: []string{"10.0.1.1"},
		lbKeys:     fmt.Sprintf("encap-source-prefix4 = %q", labSrc4),
		lbTables: fmt.Sprintf(`
[[ipam.pools]]
name = "services4"
kind = "service"
prefixes = ["10.200.0.0/24"]
[[services]]
name = "web4"
vip = %[1]q
port = 8080
backends = [{ address = "fd00:2::2" }, { address = "fd00:3::2" }]
health-check = { type = "none" }
[[services]]
name = "info4"
vip = %[1]q
port = %[2]d
backends = [{ address = "fd00:2::2" }, { address = "fd00:3::2" }]
health-check = { type = "none" }
[[services]]
name = "info6"
vip = %[3]q
port = %[2]d
backends = [{ address = "fd00:2::2" }, { address = "fd00:3::2" }]
health-check = { type = "none" }
[[services]]
name = "probe6"
vip = %[4]q
port = 8080
backends = [{ address = %[5]q }]
health-check = { type = "none" }
[[services]]
name = "probe4"
vip = %[6]q
port = 8080
backends = [{ address = %[7]q }]
health-check = { type = "none" }
`, labVIP4, infoPort, labVIP, labProbe6VIP, labProbe6Dst, labProbe4VIP, labProbe4Dst),
	})
	return l
}

// attachXDPPass attaches an XDP program that passes every packet to dev
// in ns, for as long as the test runs.
func attachXDPPass(t *testing.T, ns, dev string) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()},
	})
	if err != nil {
		t.Fatalf("load an XDP_PASS program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	testutil.InNetns(t, ns, func() {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		lk, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index})
		if err != nil {
			t.Fatalf("attach XDP_PASS to %s: %v", dev, err)
		}
		t.Cleanup(func() { lk.Close() })
	})
}

// infoServer serves [::]:8081 (IPv4 and IPv6) in ns: it greets every
// connection with "NAME PEER-ADDRESS", reads until the client closes its
// side, then answers "LENGTH SHA256-HEX" of what it read.
func infoServer(t *testing.T, ns, name string) {
	serveTCP(t, ns, fmt.Sprintf("[::]:%d", infoPort), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		peer := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		if _, err := fmt.Fprintf(c, "%s %s\n", name, peer); err != nil {
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%d %x\n", n, h.Sum(nil))
	})
}

// dialFrom connects from the client namespace with d to addr.
func (l *lbLab) dialFrom(t *testing.T, d *net.Dialer, addr string) (net.Conn, error) {
	var conn net.Conn
	var err error
	testutil.InNetns(t, l.client, func() { conn, err = d.Dial("tcp", addr) })
	return conn, err
}

// clientPort is a dialer from the client's IPv4 address and a fixed source
// port: the flow, hence its backend and outer source, is the same in every
// run. Every port is used once per lab (closed connections linger in
// TIME_WAIT), below the ephemeral range.
func clientPort(port int, timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(labClient4), Port: port}}
}

// lbCounters are `airctl lb stats -o json`: events and drops summed over CPUs.
type lbCounters struct {
	Events map[string]uint64 `json:"events"`
	Drops  map[string]uint64 `json:"drops"`
}

func readLBCounters(t *testing.T, n *node) lbCounters {
	t.Helper()
	out, errs, code := n.airctl("lb", "stats", "-o", "json")
	if code != 0 {
		t.Fatalf("airctl lb stats -o json exited %d: %s", code, errs)
	}
	var c lbCounters
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.Events == nil || c.Drops == nil {
		t.Fatalf("airctl lb stats -o json: %v\n%s", err, out)
	}
	return c
}

// nonZero lists the non-zero counters of m, for messages.
func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// TestLoadBalancerIPv4VIP: an IPv4 VIP over the IPv6 underlay. Real TCP
// connections from the client to 10.200.0.10 are encapsulated IPv4-in-IPv6
// by the LB's XDP, spread over both backends, decapsulated by the backends'
// XDP, and answered directly (the backend sees the client's own address).
// The outer source addresses come from lb.encap-source-prefix (IPv6 outer
// header) and lb.encap-source-prefix4 (IPv4 outer header) and vary with the
// flow exactly as the flow hash says.
func TestLoadBalancerIPv4VIP(t *testing.T) {
	l := newLBLabV4(t, 0)

	t.Run("connections spread over both backends", func(t *testing.T) {
		seen := map[string]int{}
		for i := range 40 {
			conn, err := l.dialFrom(t, clientPort(20000+i, 2*time.Second), labVIP4+":8080")
			if err != nil {
				t.Fatalf("connection %d to %s:8080: %v\nLB: %+v", i, labVIP4, err, readLBCounters(t, l.lb))
			}
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			r := bufio.NewReader(conn)
			who, err := r.ReadString('\n')
			if err == nil {
				err = echo(conn, r, fmt.Sprintf("IPv4 connection %d", i))
			}
			conn.Close()
			if err != nil {
				t.Fatalf("connection %d to %s:8080: %v", i, labVIP4, err)
			}
			seen[strings.TrimSpace(who)]++
		}
		t.Logf("40 IPv4 connections: %v", seen)
		if seen["b1"] == 0 || seen["b2"] == 0 || seen["b1"]+seen["b2"] != 40 {
			t.Fatalf("connections did not spread over both backends: %v", seen)
		}
	})

	t.Run("backends see the client and answer directly", func(t *testing.T) {
		for i := range 8 {
			conn, err := l.dialFrom(t, clientPort(20100+i, 2*time.Second), fmt.Sprintf("%s:%d", labVIP4, infoPort))
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			greeting, err := bufio.NewReader(conn).ReadString('\n')
			local := conn.LocalAddr().String()
			remote := conn.RemoteAddr().String()
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(greeting)
			if len(f) != 2 || f[1] != labClient4 {
				t.Fatalf("the backend greeted %q: want it to see the client's address %s (no proxy, no NAT)", greeting, labClient4)
			}
			if remote != fmt.Sprintf("%s:%d", labVIP4, infoPort) {
				t.Fatalf("%s talked to %s, not the VIP", local, remote)
			}
		}
		// Both backends decapsulated IPv6-outer packets in XDP.
		for i, b := range l.backends {
			c := readLBCounters(t, b)
			if c.Events["decap_ipv6"] == 0 {
				t.Errorf("b%d decapsulated nothing: %v", i+1, nonZero(c.Events))
			}
			t.Logf("b%d: decap_ipv6 %d, drops %v", i+1, c.Events["decap_ipv6"], nonZero(c.Drops))
		}
		c := readLBCounters(t, l.lb)
		t.Logf("LB: events %v, drops %v", nonZero(c.Events), nonZero(c.Drops))
		if c.Drops["no_source"] != 0 || c.Drops["fib"] != 0 || c.Drops["bad_backend"] != 0 {
			t.Fatalf("LB drops: %v", nonZero(c.Drops))
		}
	})

	t.Run("IPv6 outer source varies with the flow", func(t *testing.T) {
		l.checkOuterSources(t, labProbe6VIP, netip.MustParseAddr(labProbe6Dst), bpf.Settings{Src6: netip.MustParsePrefix(labSrc6)}, 21000)
	})
	t.Run("IPv4 outer source varies with the flow", func(t *testing.T) {
		l.checkOuterSources(t, labProbe4VIP, netip.MustParseAddr(labProbe4Dst), bpf.Settings{Src4: netip.MustParsePrefix(labSrc4)}, 21100)
	})
}

// checkOuterSources sends one SYN from each of 16 fixed client ports to
// vip:8080, whose only backend is dst (an address of b2 that b2 does not
// decapsulate), captures the encapsulated packets on b2's e0 and checks
// each one's outer header: source as the flow hash picks it out of the
// configured prefix (settings), destination dst, inner packet the client's
// SYN. The ports are fixed, so the outer sources are the same in every
// run; the test asserts they are not all one address.
func (l *lbLab) checkOuterSources(t *testing.T, vip string, dst netip.Addr, settings bpf.Settings, firstPort int) {
	const flows = 16
	outer4 := dst.Is4()
	prefix := settings.Src6
	if outer4 {
		prefix = settings.Src4
	}
	// Resolve the LB's neighbour for dst first: with it unresolved the
	// first packet would take the kernel's path (no_neigh_pass) instead.
	testutil.NetnsExec(t, l.lbNS, "ping", "-c", "1", "-W", "2", dst.String())

	capt := startTunnelCapture(t, l.backendNS[1], "e0")
	client, vipAddr := netip.MustParseAddr(labClient4), netip.MustParseAddr(vip)
	want := map[uint16]netip.Addr{}
	for i := range flows {
		port := uint16(firstPort + i)
		key := bpf.NewFlowKey(client, vipAddr, port, 8080, syscall.IPPROTO_TCP)
		want[port] = settings.OuterSource(bpf.FlowHash(&key, labHashSeed), outer4)
		// Nothing answers: the SYN is sent by connect itself, the dial
		// times out.
		if c, err := l.dialFrom(t, clientPort(int(port), 50*time.Millisecond), vip+":8080"); err == nil {
			c.Close()
			t.Fatalf("a connection to %s:8080 was answered", vip)
		}
	}
	// The SYNs to check: each flow's, from the client, to the VIP port.
	var pkts []tunnelPacket
	sports := func() map[uint16]bool {
		pkts = pkts[:0]
		seen := map[uint16]bool{}
		for _, p := range capt.packets() {
			if _, ok := want[p.sport]; ok && p.outerDst == dst && p.innerDst == vipAddr && p.dport == 8080 {
				pkts = append(pkts, p)
				seen[p.sport] = true
			}
		}
		return seen
	}
	testutil.WaitFor(5*time.Second, func() bool { return len(sports()) == flows })
	capt.close()
	sports()
	got := map[uint16]netip.Addr{}
	var problems []string
	for _, p := range pkts {
		if p.innerSrc != client || !p.syn {
			problems = append(problems, fmt.Sprintf("port %d: inner %s -> %s, SYN %v", p.sport, p.innerSrc, p.innerDst, p.syn))
		}
		if prev, ok := got[p.sport]; ok && prev != p.outerSrc {
			problems = append(problems, fmt.Sprintf("port %d: outer source %s, then %s", p.sport, prev, p.outerSrc))
		}
		got[p.sport] = p.outerSrc
	}
	if len(got) != flows {
		t.Fatalf("captured %d of %d encapsulated SYNs to %s on b2's e0: %v\nLB: %+v", len(got), flows, dst, got, readLBCounters(t, l.lb))
	}
	distinct := map[netip.Addr]bool{}
	for port, src := range got {
		if !prefix.Contains(src) {
			problems = append(problems, fmt.Sprintf("port %d: outer source %s outside %s", port, src, prefix))
		}
		if src != want[port] {
			problems = append(problems, fmt.Sprintf("port %d: outer source %s, want %s (flow hash)", port, src, want[port]))
		}
		distinct[src] = true
	}
	if len(problems) > 0 {
		t.Fatalf("encapsulated SYNs to %s:\n%s", dst, strings.Join(problems, "\n"))
	}
	if len(distinct) < 2 {
		t.Fatalf("all %d flows left with outer source %v: it does not vary", flows, distinct)
	}
	t.Logf("%d flows to %s, encapsulated to %s: %d distinct outer sources in %s, each the flow hash's", flows, vip, dst, len(distinct), prefix)
}

// tunnelPacket is a captured encapsulated TCP packet.
type tunnelPacket struct {
	outerSrc, outerDst, innerSrc, innerDst netip.Addr
	sport, dport                           uint16
	syn                                    bool
}

// tunnelCapture reads the frames received on one interface through a
// packet socket (which sees them after XDP: the pass-through ones intact).
type tunnelCapture struct {
	fd        int
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	frames    [][]byte
}

func startTunnelCapture(t *testing.T, ns, dev string) *tunnelCapture {
	t.Helper()
	c := &tunnelCapture{fd: -1, stop: make(chan struct{}), done: make(chan struct{})}
	proto := bpf.Htons(unix.ETH_P_ALL)
	testutil.InNetns(t, ns, func() {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			t.Fatalf("packet socket: %v", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			t.Fatalf("bind packet socket to %s: %v", dev, err)
		}
		c.fd = fd
	})
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(c.fd)
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	go c.run()
	return c
}

// run collects frames until close, for at most a minute and 100000 frames.
func (c *tunnelCapture) run() {
	defer close(c.done)
	buf := make([]byte, 65536)
	deadline := time.Now().Add(time.Minute)
	for n := 0; n < 100000 && time.Now().Before(deadline); {
		select {
		case <-c.stop:
			return
		default:
		}
		k, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			return
		}
		c.mu.Lock()
		c.frames = append(c.frames, append([]byte(nil), buf[:k]...))
		c.mu.Unlock()
		n++
	}
}

func (c *tunnelCapture) close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.done
		unix.Close(c.fd)
	})
}

// packets decodes the frames captured so far that are IPv4-in-IPv6 or
// IPv4-in-IPv4 TCP packets.
func (c *tunnelCapture) packets() []tunnelPacket {
	c.mu.Lock()
	frames := c.frames
	c.mu.Unlock()
	var out []tunnelPacket
	for _, f := range frames {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
		var addrs [][2]netip.Addr
		var tp tunnelPacket
		var tcp bool
		for _, ly := range p.Layers() {
			switch x := ly.(type) {
			case *layers.IPv6:
				addrs = append(addrs, [2]netip.Addr{ipAddr(x.SrcIP), ipAddr(x.DstIP)})
			case *layers.IPv4:
				addrs = append(addrs, [2]netip.Addr{ipAddr(x.SrcIP), ipAddr(x.DstIP)})
			case *layers.TCP:
				tp.sport, tp.dport, tp.syn, tcp = uint16(x.SrcPort), uint16(x.DstPort), x.SYN && !x.ACK, true
			}
		}
		if len(addrs) != 2 || !tcp {
			continue
		}
		tp.outerSrc, tp.outerDst, tp.innerSrc, tp.innerDst = addrs[0][0], addrs[0][1], addrs[1][0], addrs[1][1]
		out = append(out, tp)
	}
	return out
}

func ipAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// TestLoadBalancerPacketTooBig: the LB-backend links have a smaller MTU
// (1400) than the client's (1500). The backends announce an MSS for 1400,
// but a full-size segment plus the 40-byte outer IPv6 header does not fit
// the LB's egress: the LB's XDP answers the client with ICMPv6 Packet Too
// Big / ICMPv4 fragmentation needed (DF set) for 1360, the client's kernel
// lowers its path MTU to the VIP, and a 1 MiB upload completes with every
// byte arriving intact at the backend (length and SHA-256 compared).
//
// Not 1300: 1300 - 40 leaves 1260 for inner IPv6, below the IPv6 minimum
// MTU of 1280; a client raises such a too-big MTU to 1280 (RFC 8200) and
// its packets would still not fit.
func TestLoadBalancerPacketTooBig(t *testing.T) {
	const linkMTU, innerMTU, size = 1400, 1400 - 40, 1 << 20
	l := newLBLabV4(t, linkMTU)
	for _, tc := range []struct {
		name, vip string
		v4        bool
	}{
		{"IPv6 VIP", labVIP, false},
		{"IPv4 VIP with DF", labVIP4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := readLBCounters(t, l.lb)
			d := &net.Dialer{Timeout: 2 * time.Second}
			if tc.v4 {
				// Linux TCP sets DF anyway; say so.
				d.Control = func(_, _ string, rc syscall.RawConn) error {
					var serr error
					if err := rc.Control(func(fd uintptr) {
						serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
					}); err != nil {
						return err
					}
					return serr
				}
			}
			addr := net.JoinHostPort(tc.vip, strconv.Itoa(infoPort))
			conn, err := l.dialFrom(t, d, addr)
			if err != nil {
				t.Fatalf("connect to %s: %v", addr, err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			r := bufio.NewReader(conn)
			greeting, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("greeting from %s: %v", addr, err)
			}
			payload := make([]byte, size)
			rng := rand.NewChaCha8([32]byte{'a', 'i', 'r', 'd'})
			_, _ = rng.Read(payload)
			sum := sha256.Sum256(payload)
			start := time.Now()
			if _, err := conn.Write(payload); err != nil {
				t.Fatalf("sending %d bytes to %s: %v\nLB: %+v", size, addr, err, readLBCounters(t, l.lb))
			}
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			reply, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("the backend's answer after %d bytes: %v\nLB: %+v", size, err, readLBCounters(t, l.lb))
			}
			elapsed := time.Since(start)
			if want := fmt.Sprintf("%d %s", size, hex.EncodeToString(sum[:])); strings.TrimSpace(reply) != want {
				t.Fatalf("the backend received %q, want %q", strings.TrimSpace(reply), want)
			}

			after := readLBCounters(t, l.lb)
			ptb := after.Events["ptb_generated"] - before.Events["ptb_generated"]
			if ptb == 0 {
				t.Fatalf("the transfer completed but the LB generated no too-big message: events %v", nonZero(after.Events))
			}
			if d := after.Drops["too_big"] - before.Drops["too_big"]; d != 0 {
				t.Fatalf("the LB dropped %d packets as too big", d)
			}
			// The client's kernel learnt the path MTU from the LB's ICMP.
			family := "-6"
			if tc.v4 {
				family = "-4"
			}
			route := testutil.Run(t, "ip", "-n", l.client, family, "route", "get", tc.vip)
			if !regexp.MustCompile(`\bmtu ` + strconv.Itoa(innerMTU) + `\b`).MatchString(route) {
				t.Fatalf("the client's route to %s has no path MTU %d:\n%s", tc.vip, innerMTU, route)
			}
			metric := regexp.MustCompile(`(?m)^aird_lb_events_total\{event="ptb_generated"\} .*$`).FindString(l.lb.metrics())
			t.Logf("%s: %d bytes to %s (%s) intact in %s; ptb_generated +%d (now %d; metrics: %q); client route: %s",
				tc.name, size, addr, strings.TrimSpace(greeting), elapsed.Round(time.Millisecond), ptb,
				after.Events["ptb_generated"], metric, strings.Join(strings.Fields(route), " "))
		})
	}
}
