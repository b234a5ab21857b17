package integration

import (
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// pinnedTable reads, from the pinned maps of a running aird, the backend
// ids in the Maglev table of (vip, tcp, port), counted.
func pinnedTable(t *testing.T, pin, vip string, port uint16) map[uint32]int {
	t.Helper()
	vips, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", bpf.DatapathMapVips), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vips.Close()
	k := bpf.VIPKey(netip.MustParseAddr(vip), 6, port)
	var v bpf.DatapathVipValue
	if err := vips.Lookup(&k, &v); err != nil {
		return nil
	}
	outer, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", bpf.DatapathMapMaglevV2), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	tab, err := bpf.ReadTable(outer, v.VipId)
	if err != nil {
		t.Fatalf("Maglev table of vip id %d: %v", v.VipId, err)
	}
	counts := map[uint32]int{}
	for _, id := range tab.IDs() {
		counts[id]++
	}
	return counts
}

// TestLBServicesProgrammedIntoXDP: the services of the configuration land in
// the XDP data plane's maps, and the Maglev table follows backend health.
func TestLBServicesProgrammedIntoXDP(t *testing.T) {
	n := newNode(t)
	testutil.Addr(t, n.peerNS, "eth0", "fd00:100:1::21/128")
	testutil.Addr(t, n.peerNS, "eth0", "fd00:100:1::22/128")
	backend(t, n.peerNS, "fd00:100:1::21")
	stop2 := backend(t, n.peerNS, "fd00:100:1::22")
	n.writeConfig(n.bgpConfig())
	n.start()

	tbl := pinnedTable(t, n.pinPath, "fd00:300::10", 80)
	if len(tbl) != 2 || tbl[0] != 0 {
		t.Fatalf("Maglev table of the VIP: %v, want two backends and no empty slot", tbl)
	}
	out, errs, code := n.airctl("lb", "stats", "-o", "json")
	var st api.LBStats
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Events) == 0 || len(st.Drops) == 0 {
		t.Fatalf("airctl lb stats: exit %d %s\n%s", code, errs, out)
	}
	if m := n.metrics(); !strings.Contains(m, "aird_lb_events_total{") || !strings.Contains(m, "aird_lb_drops_total{") {
		t.Fatal("metrics lack the load balancer's counters")
	}
	sent := checkServiceTraffic(t, n)
	stop2()
	if !testutil.WaitFor(5*time.Second, func() bool { return len(pinnedTable(t, n.pinPath, "fd00:300::10", 80)) == 1 }) {
		t.Fatalf("the failed backend stayed in the Maglev table: %v", pinnedTable(t, n.pinPath, "fd00:300::10", 80))
	}
	// A restart adopts the programmed ids (conntrack entries refer to
	// them) and the data plane's view of health: the table stays without
	// the failed backend, before and after its first probe after the
	// restart answers.
	failed := pinnedTable(t, n.pinPath, "fd00:300::10", 80)
	n.stopForRestart()
	n.start()
	for _, when := range []string{"right after the restart", "after the first probes"} {
		after := pinnedTable(t, n.pinPath, "fd00:300::10", 80)
		if len(after) != 1 || after[0] != 0 {
			t.Fatalf("Maglev table %s: %v, want the one backend still up", when, after)
		}
		for id := range after {
			if _, ok := failed[id]; !ok {
				t.Fatalf("backend ids changed across a restart: %v before, %v after", failed, after)
			}
		}
		time.Sleep(time.Second) // the checks probe every 200 ms
	}
	// The counters live in pinned maps and the ids are adopted: the
	// service's traffic is still counted after the restart.
	out, errs, code = n.airctl("lb", "stats", "-o", "json")
	st = api.LBStats{}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Services) != 1 || st.Services[0].Packets < sent {
		t.Fatalf("airctl lb stats after a restart: exit %d %s, %+v; want at least %d packets", code, errs, st, sent)
	}
}

// sendSYNs opens n TCP connections from the peer namespace to vip:port
// without waiting for them (each sends its SYN) and returns a func that
// closes them.
func sendSYNs(t *testing.T, ns, vip string, port, n int) (closeAll func()) {
	t.Helper()
	var fds []int
	closeAll = func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		fds = nil
	}
	t.Cleanup(closeAll)
	testutil.InNetns(t, ns, func() {
		for range n {
			fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			fds = append(fds, fd)
			err = unix.Connect(fd, &unix.SockaddrInet6{Port: port, Addr: netip.MustParseAddr(vip).As16()})
			if err != nil && !errors.Is(err, unix.EINPROGRESS) {
				t.Fatalf("connect to %s: %v", vip, err)
			}
		}
	})
	return closeAll
}

// metricValue returns the value of the sample of name whose labels contain
// every one of labels (`service="web"`), and whether there is one.
func metricValue(body, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if i := strings.LastIndexByte(line, ' '); ok && i > 0 {
			v, err := strconv.ParseFloat(line[i+1:], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// checkServiceTraffic sends SYNs to the web VIP through the node's XDP
// program and expects its per-VIP and per-backend counters in airctl lb
// stats and in the metrics: non-zero, and the backends adding up to the
// service. It returns the service's packet count.
func checkServiceTraffic(t *testing.T, n *node) uint64 {
	t.Helper()
	const vip = "fd00:300::10"
	testutil.Run(t, "ip", "-n", n.peerNS, "-6", "route", "replace", vip+"/128", "via", "fd00:100:1::1", "dev", "eth0")
	closeAll := sendSYNs(t, n.peerNS, vip, 80, 8)
	var st api.LBStats
	stats := func() bool {
		out, errs, code := n.airctl("lb", "stats", "--vip", "["+vip+"]:80/tcp", "-o", "json")
		st = api.LBStats{}
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("airctl lb stats --vip: exit %d %s\n%s", code, errs, out)
		}
		return len(st.Services) == 1 && st.Services[0].Packets >= 8
	}
	ok := testutil.WaitFor(5*time.Second, stats)
	closeAll() // no retransmitted SYNs from here on
	if !ok {
		t.Fatalf("lb stats after 8 SYNs to the VIP: %+v", st)
	}
	stats()
	s := st.Services[0]
	var pk, by uint64
	for _, b := range s.Backends {
		pk, by = pk+b.Packets, by+b.Bytes
	}
	if s.Name != "web" || s.Bytes < 8*74 || len(s.Backends) != 2 || pk != s.Packets || by != s.Bytes || st.Events != nil {
		t.Fatalf("lb stats --vip: %+v; want the web service, its two backends adding up to it, no node-wide totals", st)
	}
	t.Logf("web after 8 SYNs: %d packets, %d bytes; backends %+v", s.Packets, s.Bytes, s.Backends)
	if _, errs, code := n.airctl("lb", "stats", "--vip", "fd00:300::99"); code == 0 || !strings.Contains(errs, "no service on VIP") {
		t.Errorf("airctl lb stats --vip of an unknown VIP: exit %d, %q", code, errs)
	}
	m := n.metrics()
	svc := []string{`service="web"`, `vip="` + vip + `"`, `port="80"`, `protocol="tcp"`}
	if v, ok := metricValue(m, "aird_lb_vip_packets_total", svc...); !ok || v < float64(s.Packets) {
		t.Errorf("aird_lb_vip_packets_total of web: %v (%v), airctl says %d", v, ok, s.Packets)
	}
	if v, ok := metricValue(m, "aird_lb_vip_bytes_total", svc...); !ok || v < float64(s.Bytes) {
		t.Errorf("aird_lb_vip_bytes_total of web: %v (%v), airctl says %d", v, ok, s.Bytes)
	}
	var sum float64
	for _, b := range s.Backends {
		v, ok := metricValue(m, "aird_lb_backend_packets_total", `backend="`+b.Address.String()+`"`) // one series per address
		if !ok {
			t.Errorf("no aird_lb_backend_packets_total for backend %s", b.Address)
		}
		sum += v
	}
	if sum != float64(pk) {
		t.Errorf("aird_lb_backend_packets_total of web add up to %v, airctl says %d", sum, pk)
	}
	return s.Packets
}
