package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// endpointNode is an aird node with pod prefixes: newNode's namespace and
// its uplink0 to a peer namespace ("outside": the switch and the world),
// which routes the node's pod prefixes to it.
func endpointNode(t *testing.T) *node { return endpointNodeWith(t, "10.200.1.0/24") }

// endpointNodeWith is endpointNode with another IPv4 pod prefix (inside
// 10.200.0.0/16).
func endpointNodeWith(t *testing.T, pod4 string) *node {
	t.Helper()
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0") + `
[ipam]
pod-prefixes = ["fd00:200:1::/64", "` + pod4 + `"]
[[ipam.pools]]
name = "pods"
kind = "pod"
prefixes = ["fd00:200::/40", "10.200.0.0/16"]
`)
	// The outside routes the pod prefixes to the node; frames the node's
	// XDP redirects into uplink0 reach eth0 only with NAPI (GRO) there.
	testutil.Run(t, "ip", "-n", n.peerNS, "-6", "route", "add", "fd00:200:1::/64", "via", "fd00:100:1::1")
	testutil.Run(t, "ip", "-n", n.peerNS, "route", "add", pod4, "via", "10.100.1.1")
	testutil.RequireCommand(t, "ethtool")
	testutil.NetnsExec(t, n.peerNS, "ethtool", "-K", "eth0", "gro", "on", "tx", "off")
	testutil.WaitIPv6Ready(t, n.ns, n.peerNS)
	return n
}

// endpoints lists the node's endpoints.
func (n *node) endpoints() []api.Endpoint {
	n.t.Helper()
	out, errs, code := n.airctl("endpoint", "list", "-o", "json")
	if code != 0 {
		n.t.Fatalf("airctl endpoint list: exit %d: %s", code, errs)
	}
	var eps []api.Endpoint
	if err := json.Unmarshal([]byte(out), &eps); err != nil {
		n.t.Fatalf("endpoint list -o json: %v\n%s", err, out)
	}
	return eps
}

func (n *node) endpoint(name string) api.Endpoint {
	n.t.Helper()
	for _, ep := range n.endpoints() {
		if ep.Name == name {
			return ep
		}
	}
	n.t.Fatalf("no endpoint %s", name)
	return api.Endpoint{}
}

// addContainer creates a namespace and makes it an endpoint; it returns
// the namespace and the endpoint.
func (n *node) addContainer(name string, extra ...string) (string, api.Endpoint) {
	n.t.Helper()
	ns := testutil.NewNetns(n.t, "airde-")
	out, errs, code := n.airctl(append([]string{"endpoint", "add", name, "--netns", "/run/netns/" + ns, "-o", "json"}, extra...)...)
	if code != 0 {
		n.t.Fatalf("airctl endpoint add %s: exit %d: %s%s", name, code, out, errs)
	}
	var ep api.Endpoint
	if err := json.Unmarshal([]byte(out), &ep); err != nil {
		n.t.Fatalf("endpoint add -o json: %v\n%s", err, out)
	}
	return ns, ep
}

// addrOf returns ep's address of the family of want ("ipv6"/"ipv4").
func addrOf(t *testing.T, ep api.Endpoint, fam string) netip.Addr {
	t.Helper()
	for _, a := range ep.Addresses {
		if (fam == "ipv4") == a.Is4() {
			return a
		}
	}
	t.Fatalf("endpoint %s has no %s address: %v", ep.Name, fam, ep.Addresses)
	return netip.Addr{}
}

// dialName connects from ns to addr:8080 and returns the name the server
// there says, with one echo round trip.
func dialName(t *testing.T, ns string, addr netip.Addr) (string, error) {
	var conn net.Conn
	var err error
	testutil.InNetns(t, ns, func() {
		d := net.Dialer{Timeout: 2 * time.Second}
		conn, err = d.Dial("tcp", netip.AddrPortFrom(addr, 8080).String())
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(conn)
	who, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if err := echo(conn, r, strings.Repeat("x", 1000)); err != nil {
		return "", err
	}
	return strings.TrimSpace(who), nil
}

// TestEndpointsRoutedByXDP: containers get addresses from the node's pod
// prefixes and are reachable from outside and from each other over real
// TCP, delivered by XDP (their counters move); a spoofing container is
// dropped; a restart keeps everything; delete undoes everything.
func TestEndpointsRoutedByXDP(t *testing.T) {
	n := endpointNode(t)
	n.start()
	c1, e1 := n.addContainer("web-1")
	c2, e2 := n.addContainer("web-2", "--family", "ipv6")
	if len(e1.Addresses) != 2 || len(e2.Addresses) != 1 {
		t.Fatalf("addresses: web-1 %v, web-2 %v", e1.Addresses, e2.Addresses)
	}
	for _, a := range append(slices.Clone(e1.Addresses), e2.Addresses...) {
		if !netip.MustParsePrefix("fd00:200:1::/64").Contains(a) && !netip.MustParsePrefix("10.200.1.0/24").Contains(a) {
			t.Fatalf("address %s outside the node's pod prefixes", a)
		}
	}
	nameServer(t, c1, "web-1")
	nameServer(t, c2, "web-2")

	check := func(what, from string, to api.Endpoint, fam string) {
		t.Helper()
		who, err := dialName(t, from, addrOf(t, to, fam))
		if err != nil || who != to.Name {
			t.Fatalf("%s: %s -> %s (%s): %q, %v", what, from, to.Name, fam, who, err)
		}
	}
	check("outside to a container", n.peerNS, e1, "ipv6")
	check("outside to a container over ipv4", n.peerNS, e1, "ipv4")
	check("outside to another container", n.peerNS, e2, "ipv6")
	check("container to container", c1, e2, "ipv6")
	check("container to container, back", c2, e1, "ipv6")

	// The data plane carried it: XDP counted what it delivered and what
	// the containers sent.
	got := n.endpoint("web-1")
	if got.Counters.RxPackets == 0 || got.Counters.TxPackets == 0 || got.State != "ready" {
		t.Fatalf("web-1 after traffic: %+v", got)
	}

	// A container sending from an address that is not its own is dropped.
	spoof := "fd00:200:1::dead"
	testutil.NetnsExec(t, c1, "ip", "addr", "add", spoof+"/128", "dev", "eth0", "nodad")
	if out, err := exec.Command("ip", "netns", "exec", c1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "1", "-I", spoof, "fd00:100:1::2").CombinedOutput(); err == nil {
		t.Fatalf("ping from a spoofed source got answers:\n%s", out)
	}
	if d := n.endpoint("web-1").Counters.DropSpoofed; d < 3 {
		t.Fatalf("spoofed packets counted %d, want >= 3", d)
	}
	// Prometheus reads the same counters at scrape time.
	body := n.metrics()
	for _, m := range []struct {
		name   string
		labels []string
	}{
		{"aird_endpoint_drops_total", []string{`endpoint="web-1"`, `reason="spoofed"`}},
		{"aird_endpoint_packets_total", []string{`endpoint="web-1"`, `direction="rx"`}},
		{"aird_router_events_total", []string{`event="delivered"`}},
		{"aird_endpoints", []string{`kind="container"`, `state="ready"`}},
	} {
		if v, ok := metricValue(body, m.name, m.labels...); !ok || v < 1 {
			t.Errorf("metric %s%v = %v (found %v), want >= 1", m.name, m.labels, v, ok)
		}
	}

	if out, _, _ := n.airctl("status"); !strings.Contains(out, "Endpoints:") || !strings.Contains(out, "2 ready") {
		t.Fatalf("airctl status does not count the endpoints:\n%s", out)
	}
	// A restart adopts the endpoints: same addresses, still reachable.
	n.stopForRestart()
	n.start()
	if again := n.endpoint("web-1"); !slices.Equal(again.Addresses, e1.Addresses) || again.State != "ready" {
		t.Fatalf("after restart: %+v, want addresses %v", again, e1.Addresses)
	}
	check("outside to a container after a restart", n.peerNS, e1, "ipv6")
	check("container to container after a restart", c2, e1, "ipv6")
	check("outside to a container over ipv4 after a restart", n.peerNS, e1, "ipv4")

	// Delete: the link, the route and the address go.
	if _, errs, code := n.airctl("endpoint", "del", "web-2"); code != 0 {
		t.Fatalf("endpoint del: %d %s", code, errs)
	}
	if out := testutil.NetnsExec(t, c2, "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("web-2's eth0 still there:\n%s", out)
	}
	if out := testutil.NetnsExec(t, n.ns, "ip", "-6", "route", "show", addrOf(t, e2, "ipv6").String()); strings.TrimSpace(out) != "" {
		t.Fatalf("route to web-2 still there: %s", out)
	}
	out, _, _ := n.airctl("ipam", "allocations", "-o", "json")
	if strings.Contains(out, "endpoint/web-2") {
		t.Fatalf("web-2's address still allocated:\n%s", out)
	}
	if _, _, code := n.airctl("endpoint", "show", "web-2"); code == 0 {
		t.Fatalf("endpoint show of a deleted endpoint succeeded")
	}

	// aird --cleanup removes the remaining endpoint with the data plane.
	n.stop()
	if out, err := n.cleanup(); err != nil || !strings.Contains(out, "removed 1 endpoint(s)") {
		t.Fatalf("aird --cleanup: %v\n%s", err, out)
	}
	if out := testutil.NetnsExec(t, n.ns, "ip", "-o", "link"); strings.Contains(out, e1.Interface) {
		t.Fatalf("web-1's link %s still there after cleanup:\n%s", e1.Interface, out)
	}
	if out := testutil.NetnsExec(t, c1, "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("web-1's eth0 still there after cleanup:\n%s", out)
	}
}

// TestEndpointsSurviveKill: aird is killed (SIGKILL) while endpoints are
// being added; after a restart every endpoint the API acknowledged is there
// with its addresses, nothing half-made is left (no link, allocation or
// program without an endpoint), and no address is held twice.
func TestEndpointsSurviveKill(t *testing.T) {
	n := endpointNode(t)
	n.start()
	const total = 24
	nss := make([]string, total)
	for i := range nss {
		nss[i] = testutil.NewNetns(t, "airdk-")
	}
	acked := map[string][]netip.Addr{}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			name := fmt.Sprintf("k-%d", i)
			out, _, code := n.airctl("endpoint", "add", name, "--netns", "/run/netns/"+nss[i], "-o", "json")
			if code != 0 {
				return // aird is gone
			}
			var ep api.Endpoint
			if json.Unmarshal([]byte(out), &ep) == nil {
				mu.Lock()
				acked[name] = ep.Addresses
				mu.Unlock()
			}
		}
	}()
	// Kill in the middle of the burst.
	testutil.WaitFor(20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= total/3 })
	n.kill()
	<-done
	mu.Lock()
	t.Logf("%d of %d endpoint adds acknowledged before the kill", len(acked), total)
	mu.Unlock()
	if len(acked) == 0 || len(acked) == total {
		t.Fatalf("the kill did not land in the middle of the burst (%d acknowledged)", len(acked))
	}

	n.start()
	eps := n.endpoints()
	seen := map[netip.Addr]string{}
	hostIfs := map[string]bool{}
	for _, ep := range eps {
		if ep.State != "ready" {
			t.Errorf("endpoint %s is %s after the restart", ep.Name, ep.State)
		}
		hostIfs[ep.Interface] = true
		for _, a := range ep.Addresses {
			if other, dup := seen[a]; dup {
				t.Errorf("address %s held by %s and %s", a, other, ep.Name)
			}
			seen[a] = ep.Name
		}
	}
	for name, addrs := range acked {
		found := false
		for _, ep := range eps {
			if ep.Name == name {
				found = true
				if !slices.Equal(ep.Addresses, addrs) {
					t.Errorf("%s: addresses %v after the restart, acknowledged %v", name, ep.Addresses, addrs)
				}
			}
		}
		if !found {
			t.Errorf("acknowledged endpoint %s lost", name)
		}
	}
	// Nothing half-made: every host link, allocation and pinned endpoint
	// program belongs to a listed endpoint.
	for _, line := range strings.Split(testutil.NetnsExec(t, n.ns, "ip", "-o", "link", "show", "type", "veth"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		dev, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(dev, "air") && !hostIfs[dev] {
			t.Errorf("host link %s belongs to no endpoint", dev)
		}
	}
	out, _, _ := n.airctl("ipam", "allocations", "-o", "json")
	var als []struct {
		Owner string     `json:"owner"`
		Addr  netip.Addr `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &als); err != nil {
		t.Fatalf("ipam allocations: %v\n%s", err, out)
	}
	for _, al := range als {
		if strings.HasPrefix(al.Owner, "endpoint/") && seen[al.Addr] != strings.TrimPrefix(al.Owner, "endpoint/") {
			t.Errorf("allocation %s of %s belongs to no listed endpoint", al.Addr, al.Owner)
		}
	}
	pins, _ := filepath.Glob(filepath.Join(n.pinPath, "links", "ep_*"))
	for _, p := range pins {
		if !hostIfs[strings.TrimPrefix(filepath.Base(p), "ep_")] {
			t.Errorf("endpoint program pinned at %s belongs to no endpoint", p)
		}
	}
	// And they work: the outside reaches the last acknowledged one.
	for _, ep := range eps {
		if ep.Name == eps[len(eps)-1].Name {
			ns := nss[slices.IndexFunc(nss, func(s string) bool { return strings.Contains(ep.Netns, s) })]
			nameServer(t, ns, ep.Name)
			if who, err := dialName(t, n.peerNS, addrOf(t, ep, "ipv6")); err != nil || who != ep.Name {
				t.Fatalf("%s after the restart: %q, %v", ep.Name, who, err)
			}
		}
	}
}
