package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// lbLab is a client, a load-balancer node and two backend nodes, each in
// its own namespace, every node running aird:
//
//	client c0 fd00:1::2 ── l0 fd00:1::1 [LB aird] l1 fd00:2::1 ── e0 fd00:2::2 [backend b1 aird]
//	                                              l2 fd00:3::1 ── e0 fd00:3::2 [backend b2 aird]
//
// The LB balances VIP fd00:300::10 port 8080 in XDP and encapsulates to the
// backends (outer sources from labSrc6, labSrc4 or its IPv4 underlay, the
// backends' datapath.tunnel-sources); each backend's aird decapsulates in
// XDP and its kernel, which
// has the VIP on lo, answers the client directly through its default
// route (the LB node forwards replies in the kernel, outside XDP).
type lbLab struct {
	client, lbNS string
	lb           *node
	backends     []*node
	backendNS    []string
	stopServer   []func()
}

const labVIP = "fd00:300::10"

// lbLabOptions extend the lab for other tests (lb_e2e_v4_test.go); the zero
// value is the lab described above.
type lbLabOptions struct {
	// wire runs once every link is up, before any aird starts: more
	// addresses, routes, MTUs.
	wire func(l *lbLab)
	// lbUnderlay is appended to the LB's node.underlay, lbKeys to its
	// [lb] table, lbTables to the end of its aird.toml (pools, services).
	lbUnderlay []string
	lbKeys     string
	lbTables   string
}

func newLBLab(t *testing.T) *lbLab { return newLBLabWith(t, lbLabOptions{}) }

func newLBLabWith(t *testing.T, o lbLabOptions) *lbLab {
	l := &lbLab{client: testutil.NewNetns(t, "airdc-")}
	l.lbNS = testutil.NewNetns(t, "airdl-")
	testutil.Run(t, "ip", "link", "add", "c0", "netns", l.client, "type", "veth", "peer", "name", "l0", "netns", l.lbNS)
	testutil.Addr(t, l.client, "c0", "fd00:1::2/64")
	testutil.Addr(t, l.lbNS, "l0", "fd00:1::1/64")
	for _, d := range []struct{ ns, dev string }{{l.client, "c0"}, {l.lbNS, "l0"}} {
		testutil.Run(t, "ip", "-n", d.ns, "link", "set", d.dev, "up")
	}
	testutil.Run(t, "ip", "-n", l.client, "-6", "route", "add", "fd00:300::/112", "via", "fd00:1::1")
	// A local socket's packets leave a veth with only a partial checksum
	// (the "hardware" is to finish it); an XDP redirect hands them on as
	// they are, and the backend would drop them. Real clients arrive over
	// real links with complete checksums; here the client computes them.
	testutil.RequireCommand(t, "ethtool")
	testutil.NetnsExec(t, l.client, "ethtool", "-K", "c0", "tx", "off")
	testutil.NetnsExec(t, l.lbNS, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	for i := 1; i <= 2; i++ {
		ns := testutil.NewNetns(t, fmt.Sprintf("airdb%d-", i))
		lbDev := fmt.Sprintf("l%d", i)
		testutil.Run(t, "ip", "link", "add", lbDev, "netns", l.lbNS, "type", "veth", "peer", "name", "e0", "netns", ns)
		testutil.Addr(t, l.lbNS, lbDev, fmt.Sprintf("fd00:%d::1/64", i+1))
		testutil.Addr(t, ns, "e0", fmt.Sprintf("fd00:%d::2/64", i+1))
		testutil.Run(t, "ip", "-n", l.lbNS, "link", "set", lbDev, "up")
		testutil.Run(t, "ip", "-n", ns, "link", "set", "e0", "up")
		testutil.Run(t, "ip", "-n", ns, "-6", "route", "add", "default", "via", fmt.Sprintf("fd00:%d::1", i+1))
		testutil.Addr(t, ns, "lo", labVIP+"/128")
		l.backendNS = append(l.backendNS, ns)
	}
	if o.wire != nil {
		o.wire(l)
	}
	// Backends: aird for decap, and a server that says who it is.
	for i, ns := range l.backendNS {
		b := newAirdIn(t, ns)
		b.writeConfig(fmt.Sprintf(`[node]
name = "b%d"
router-id = "10.255.1.%d"
underlay = ["fd00:%d::2"]
uplinks = ["e0"]
[datapath]
pin-path = %q
tunnel-sources = [%q, %q, %q]
[api]
socket = %q
`, i+1, i+1, i+2, b.pinPath, labSrc6, labSrc4, labLBUnderlay4+"/32", b.socket))
		b.start()
		l.backends = append(l.backends, b)
		l.stopServer = append(l.stopServer, nameServer(t, ns, fmt.Sprintf("b%d", i+1)))
	}
	l.lb = newAirdIn(t, l.lbNS)
	underlay := ""
	for _, a := range o.lbUnderlay {
		underlay += fmt.Sprintf(", %q", a)
	}
	l.lb.writeConfig(fmt.Sprintf(`[node]
name = "lb"
router-id = "10.255.0.1"
underlay = ["fd00:1::1"%s]
uplinks = ["l0", "l1", "l2"]
[datapath]
pin-path = %q
[api]
socket = %q
[metrics]
listen = "127.0.0.1:9469"
[lb]
encap-source-prefix = "fd00:1::1:0/112"
%s
[[ipam.pools]]
name = "services"
kind = "service"
prefixes = ["fd00:300::/112"]
[[services]]
name = "web"
vip = %q
port = 8080
backends = [{ address = "fd00:2::2" }, { address = "fd00:3::2" }]
[services.health-check]
type = "tcp"
interval = "300ms"
timeout = "250ms"
rise = 1
fall = 3
%s`, underlay, l.lb.pinPath, l.lb.socket, o.lbKeys, labVIP, o.lbTables))
	// The backends answer probes from the VIP (on lo), which needs their
	// link-local addresses for neighbour discovery: wait for their DAD.
	testutil.WaitIPv6Ready(t, append([]string{l.client, l.lbNS}, l.backendNS...)...)
	l.lb.start()
	l.waitHealthy(t, "fd00:2::2", "fd00:3::2")
	return l
}

// waitHealthy waits until the LB's health checks call exactly these
// backends of service "web" healthy (a probe can fail while the lab's
// neighbours resolve).
func (l *lbLab) waitHealthy(t *testing.T, want ...string) {
	t.Helper()
	l.waitServiceHealthy(t, "web", want...)
}

// waitServiceHealthy is waitHealthy for the service called name: the
// backends in want, and only those, are healthy, and the data plane's
// table has exactly those of them that take new flows (its usable count
// follows the programming, a moment after the health state).
func (l *lbLab) waitServiceHealthy(t *testing.T, name string, want ...string) {
	t.Helper()
	var last string
	if !testutil.WaitFor(10*time.Second, func() bool {
		out, _, _ := l.lb.airctl("lb", "backends", "-o", "json")
		last = out
		var ss []api.LBService
		if json.Unmarshal([]byte(out), &ss) != nil {
			return false
		}
		i := slices.IndexFunc(ss, func(s api.LBService) bool { return s.Name == name })
		if i < 0 {
			return false
		}
		var healthy []string
		usable := 0
		for _, b := range ss[i].Backends {
			if b.Health.Healthy && b.Health.Checks > 0 {
				healthy = append(healthy, b.Address.String())
				if b.Weight > 0 && !b.Drained {
					usable++
				}
			}
		}
		return strings.Join(healthy, ",") == strings.Join(want, ",") && ss[i].Usable == usable
	}) {
		t.Fatalf("backends of %s healthy never became %v:\n%s", name, want, last)
	}
}

// nameServer answers every TCP connection on [::]:8080 inside ns with its
// name, then echoes lines until the client closes. The returned stop closes
// the listener (the backend is gone for new connections).
func nameServer(t *testing.T, ns, name string) (stop func()) {
	return serveTCP(t, ns, "[::]:8080", func(c net.Conn) {
		fmt.Fprintln(c, name)
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprint(c, line)
		}
	})
}

// connect opens a TCP connection from the client to the VIP and returns it
// with the name of the backend that answered.
func (l *lbLab) connect(t *testing.T) (net.Conn, *bufio.Reader, string, error) {
	var conn net.Conn
	var err error
	testutil.InNetns(t, l.client, func() {
		d := net.Dialer{Timeout: 2 * time.Second}
		conn, err = d.Dial("tcp", "["+labVIP+"]:8080")
	})
	if err != nil {
		return nil, nil, "", err
	}
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, nil, "", err
	}
	return conn, r, strings.TrimSpace(line), nil
}

// ask connects, returns who answered and closes.
func (l *lbLab) ask(t *testing.T) (string, error) {
	conn, _, who, err := l.connect(t)
	if err == nil {
		conn.Close()
	}
	return who, err
}

// echo sends a line on an established connection and checks it comes back.
func echo(conn net.Conn, r *bufio.Reader, msg string) error {
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(conn, msg); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != msg {
		return fmt.Errorf("echo %q came back as %q", msg, line)
	}
	return nil
}

// TestLoadBalancerEndToEnd: real TCP connections from a client to the VIP
// are balanced in XDP over both backends (encapsulated by the LB's aird,
// decapsulated by the backends' aird); when a backend's server stops, the
// health check takes it out and every new connection goes to the other.
func TestLoadBalancerEndToEnd(t *testing.T) {
	l := newLBLab(t)
	seen := map[string]int{}
	for i := 0; i < 40; i++ {
		who, err := l.ask(t)
		if err != nil {
			st, _, _ := l.lb.airctl("lb", "stats", "-o", "json")
			b1, _, _ := l.backends[0].airctl("lb", "stats", "-o", "json")
			b1s, _, _ := l.backends[0].airctl("status")
			b2s, _, _ := l.backends[1].airctl("status")
			t.Fatalf("connection %d to the VIP: %v\nLB stats:\n%s\nb1 stats:\n%s\n%s\n%s", i, err, st, b1, b1s, b2s)
		}
		seen[who]++
	}
	t.Logf("40 connections: %v", seen)
	if seen["b1"] == 0 || seen["b2"] == 0 {
		t.Fatalf("connections did not spread over both backends: %v", seen)
	}

	// Established connections to both backends, kept across what follows.
	held := map[string]struct {
		c net.Conn
		r *bufio.Reader
	}{}
	for i := 0; i < 40 && len(held) < 2; i++ {
		c, r, who, err := l.connect(t)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := held[who]; ok {
			c.Close()
			continue
		}
		held[who] = struct {
			c net.Conn
			r *bufio.Reader
		}{c, r}
		defer c.Close()
	}

	// Restart the LB's aird: the pinned data plane (and its conntrack)
	// carries the established connections through.
	l.lb.stopForRestart()
	for who, h := range held {
		if err := echo(h.c, h.r, "while the LB's aird is down"); err != nil {
			t.Fatalf("connection to %s broke while aird was stopped: %v", who, err)
		}
	}
	l.lb.start()
	for who, h := range held {
		if err := echo(h.c, h.r, "after the LB's aird restarted"); err != nil {
			t.Fatalf("connection to %s broke across the restart: %v", who, err)
		}
	}

	// b2's service stops: the health check takes it out, new connections
	// all go to b1, and the established connection to b1 is unaffected.
	l.stopServer[1]()
	l.waitHealthy(t, "fd00:2::2")
	after := map[string]int{}
	for i := 0; i < 20; i++ {
		who, err := l.ask(t)
		if err != nil {
			t.Fatalf("connection %d after b2 failed: %v", i, err)
		}
		after[who]++
	}
	if after["b1"] != 20 {
		t.Fatalf("after b2 failed, new connections went to %v; want all to b1", after)
	}
	if err := echo(held["b1"].c, held["b1"].r, "after b2 failed"); err != nil {
		t.Fatalf("the connection to b1 broke when b2 failed: %v", err)
	}
	st, _, _ := l.lb.airctl("lb", "stats")
	t.Logf("LB stats:\n%s", st)
}
