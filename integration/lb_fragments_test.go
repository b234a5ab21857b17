package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// udpHashServer answers every datagram to [addr]:port in ns with
// "NAME LENGTH SHA256", until the test ends.
func udpHashServer(t *testing.T, ns, name, addr string, port int) {
	t.Helper()
	var pc net.PacketConn
	testutil.InNetns(t, ns, func() {
		var err error
		pc, err = net.ListenPacket("udp", fmt.Sprintf("[%s]:%d", addr, port))
		if err != nil {
			t.Fatalf("udp server %s: %v", name, err)
		}
	})
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			sum := sha256.Sum256(buf[:n])
			_, _ = pc.WriteTo(fmt.Appendf(nil, "%s %d %s", name, n, hex.EncodeToString(sum[:])), from)
		}
	}()
}

// TestLoadBalancerUDPFragments: datagrams larger than the path MTU reach a
// UDP port service as IPv6 fragments. The VIP has no port-0 service, so
// the control plane's fragments-only entry catches them; every fragment of
// a datagram is hashed on (src, dst, proto) and meets one backend, which
// reassembles it. The first datagrams also exceed the LB->backend MTU once
// encapsulated: the LB answers with Packet Too Big, the client's kernel
// fragments smaller, and a resend gets through.
func TestLoadBalancerUDPFragments(t *testing.T) {
	const port = 5353
	l := newLBLabWith(t, lbLabOptions{wire: func(l *lbLab) {
		// The LB's too-big messages leave by XDP_TX; a veth delivers such
		// frames only to a peer with an XDP program (a real NIC needs none).
		attachXDPPass(t, l.client, "c0")
	}, lbTables: fmt.Sprintf(`
[[services]]
name = "bulk-udp"
vip = %q
port = %d
protocol = "udp"
backends = [{ address = "fd00:2::2" }, { address = "fd00:3::2" }]
[services.health-check]
type = "none"
`, labVIP, port)})
	for i, ns := range l.backendNS {
		udpHashServer(t, ns, fmt.Sprintf("b%d", i+1), labVIP, port)
	}
	before := readLBCounters(t, l.lb)

	var conn *net.UDPConn
	testutil.InNetns(t, l.client, func() {
		var err error
		conn, err = net.DialUDP("udp", nil, &net.UDPAddr{IP: net.ParseIP(labVIP), Port: port})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer conn.Close()
	seen := map[string]bool{}
	for _, size := range []int{200, 4000, 9000, 30000} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i*7 + size)
		}
		sum := sha256.Sum256(payload)
		want := fmt.Sprintf(" %d %s", size, hex.EncodeToString(sum[:]))
		var reply string
		for attempt := 1; attempt <= 5 && reply == ""; attempt++ {
			if _, err := conn.Write(payload); err != nil {
				t.Fatalf("send %d bytes: %v", size, err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 512)
			n, err := conn.Read(buf)
			if err != nil {
				t.Logf("%d bytes, attempt %d: no answer (%v)", size, attempt, err)
				continue
			}
			reply = string(buf[:n])
		}
		name, rest, _ := strings.Cut(reply, " ")
		if " "+rest != want {
			t.Fatalf("%d-byte datagram: backend answered %q, want NAME%s\nLB: %+v", size, reply, want, readLBCounters(t, l.lb))
		}
		seen[name] = true
		t.Logf("%d-byte datagram reassembled intact by %s", size, name)
	}
	after := readLBCounters(t, l.lb)
	if d := after.Drops["fragment"] - before.Drops["fragment"]; d != 0 {
		t.Errorf("the LB dropped %d fragments", d)
	}
	t.Logf("LB: ptb_generated +%d, tx +%d, redirect +%d; backends answering: %v",
		after.Events["ptb_generated"]-before.Events["ptb_generated"], after.Events["tx"]-before.Events["tx"],
		after.Events["redirect"]-before.Events["redirect"], seen)
}
