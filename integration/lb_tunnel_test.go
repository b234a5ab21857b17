package integration

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

// TestTunnelDecapIsNoRelay: a backend's aird decapsulates only tunnel
// packets from its datapath.tunnel-sources whose inner packet is for the
// node itself, and follows the node's addresses as they change. The
// client crafts the tunnel packets (raw IPv6 socket, any outer source) and
// sends them to backend b1's underlay address through the LB node, which
// forwards them in its kernel.
func TestTunnelDecapIsNoRelay(t *testing.T) {
	l := newLBLab(t)
	b1 := l.backends[0]
	testutil.Run(t, "ip", "-n", l.client, "-6", "route", "add", "fd00:2::/64", "via", "fd00:1::1")
	const (
		trusted   = "fd00:1::1:77" // inside labSrc6, the LB's encap sources
		untrusted = "fd00:1::2"    // the client itself
		b1Addr    = "fd00:2::2"
		added     = "fd00:300::99" // put on b1's lo while aird runs
	)
	send := func(src, innerDst string) {
		t.Helper()
		inner := udp6Packet(t, "fd00:1::2", innerDst, 40000, 9, []byte("relay me"))
		sendRawIPv6(t, l.client, ipv6Header(t, src, b1Addr, 41, len(inner)), inner)
	}
	// expect sends one tunnel packet and waits for counter name of b1 to
	// grow by one ("drop:<reason>" or "event:<name>").
	expect := func(what, src, innerDst, counter string) {
		t.Helper()
		before := b1Counter(t, b1, counter)
		send(src, innerDst)
		if !testutil.WaitFor(5*time.Second, func() bool { return b1Counter(t, b1, counter) == before+1 }) {
			t.Fatalf("%s: b1's %s stayed at %d (want %d)", what, counter, b1Counter(t, b1, counter), before+1)
		}
	}

	// A decapsulated packet is proven by its arrival: decap_ipv6 also
	// counts the LB's tunnelled health probes, which never stop.
	got := listenUDP(t, l.backendNS[0], "[::]:9")
	send(trusted, labVIP)
	select {
	case msg := <-got:
		if msg != "relay me" {
			t.Fatalf("b1 received %q", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("trusted source, inner to b1's VIP on lo: the inner packet did not arrive at b1")
	}
	expect("untrusted source", untrusted, labVIP, "drop:tunnel_source")
	expect("trusted source, inner to another node (b2)", trusted, "fd00:3::2", "drop:tunnel_destination")
	expect("trusted source, inner to the client (relay back)", trusted, "fd00:1::2", "drop:tunnel_destination")
	expect("trusted source, inner to an address b1 does not have yet", trusted, added, "drop:tunnel_destination")

	// The address follower: an address added to lo while aird runs is a
	// tunnel destination within moments, and no longer once removed.
	testutil.Addr(t, l.backendNS[0], "lo", added+"/128")
	if !testutil.WaitFor(5*time.Second, func() bool {
		send(trusted, added)
		select {
		case <-got:
			return true
		case <-time.After(time.Second):
			return false
		}
	}) {
		t.Fatalf("tunnel packets to %s (added to lo) are not decapsulated", added)
	}
	testutil.Run(t, "ip", "-n", l.backendNS[0], "addr", "del", added+"/128", "dev", "lo")
	if !testutil.WaitFor(5*time.Second, func() bool {
		before := b1Counter(t, b1, "drop:tunnel_destination")
		send(trusted, added)
		return testutil.WaitFor(time.Second, func() bool { return b1Counter(t, b1, "drop:tunnel_destination") == before+1 })
	}) {
		t.Fatalf("tunnel packets to %s (removed from lo) are still decapsulated", added)
	}

	// The trusted path still carries real traffic.
	if who, err := l.ask(t); err != nil {
		t.Fatalf("a connection through the LB after the hostile packets: %v", err)
	} else {
		t.Logf("connection answered by %s", who)
	}
}

// listenUDP receives datagrams on addr inside ns and hands their payloads
// on until the test ends.
func listenUDP(t *testing.T, ns, addr string) <-chan string {
	t.Helper()
	var pc net.PacketConn
	testutil.InNetns(t, ns, func() {
		var err error
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			t.Fatalf("listen %s in %s: %v", addr, ns, err)
		}
	})
	t.Cleanup(func() { pc.Close() })
	out := make(chan string, 16)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case out <- string(buf[:n]):
			default:
			}
		}
	}()
	return out
}

// b1Counter reads one of a node's data-plane counters: "drop:<reason>" or
// "event:<name>".
func b1Counter(t *testing.T, n *node, name string) uint64 {
	t.Helper()
	st := readLBCounters(t, n)
	kind, key, _ := strings.Cut(name, ":")
	if kind == "drop" {
		return st.Drops[key]
	}
	return st.Events[key]
}

// ipv6Header is a fixed IPv6 header for a payload of n bytes.
func ipv6Header(t *testing.T, src, dst string, next byte, n int) []byte {
	t.Helper()
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(n))
	h[6], h[7] = next, 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return h
}

// udp6Packet is a whole IPv6/UDP packet with a correct checksum.
func udp6Packet(t *testing.T, src, dst string, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	ip := ipv6Header(t, src, dst, 17, len(udp))
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(ip[8:40])
	sum += uint32(len(udp)) + 17
	add(udp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(udp[6:], ^uint16(sum))
	return append(ip, udp...)
}

// sendRawIPv6 sends hdr+payload as it is (IPPROTO_RAW: the kernel adds no
// header and routes it by its destination) from inside namespace ns.
func sendRawIPv6(t *testing.T, ns string, hdr, payload []byte) {
	t.Helper()
	testutil.InNetns(t, ns, func() {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			t.Fatalf("raw socket: %v", err)
		}
		defer unix.Close(fd)
		var sa unix.SockaddrInet6
		copy(sa.Addr[:], net.IP(hdr[24:40]))
		if err := unix.Sendto(fd, append(append([]byte(nil), hdr...), payload...), 0, &sa); err != nil {
			t.Fatalf("send raw packet: %v", err)
		}
	})
}
