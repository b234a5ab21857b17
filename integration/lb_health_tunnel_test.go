package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/datapath"
	"github.com/aird-net/aird/internal/testutil"
	"github.com/aird-net/aird/lb/health"
)

// TestLBHealthThroughTunnel: the LB's health checks travel the encapsulated
// path data packets take. When only the tunnel to b2 breaks (b2's aird stops
// decapsulating) while b2's own address still answers TCP, the LB marks b2
// unhealthy and takes it out of the Maglev table; a check configured
// "direct" does not notice; when the tunnel works again, b2 returns.
func TestLBHealthThroughTunnel(t *testing.T) {
	l := newLBLab(t)
	const b1, b2 = "fd00:2::2", "fd00:3::2"

	// Both backends are probed through the tunnel: the probe program
	// encapsulated their probes, and the probe routing is in place.
	for _, b := range l.backendHealth(t) {
		if b.Health.Via != health.ViaTunnel || b.Health.Fallback != "" {
			t.Fatalf("backend %s probed via %q (fallback %q), want the tunnel", b.Address, b.Health.Via, b.Health.Fallback)
		}
	}
	if n := pinnedLBStat(t, l.lb.pinPath, bpf.DatapathLbStatLB_STAT_HC_ENCAP); n == 0 {
		t.Fatal("no probe packet went through the probe program")
	}
	testutil.InNetns(t, l.lbNS, func() {
		if ok, err := datapath.ProbeRoutingInstalled(); !ok || err != nil {
			t.Fatalf("probe routing not installed on the LB: %v", err)
		}
	})
	b1ID, b2ID := pinnedBackendID(t, l.lb.pinPath, b1), pinnedBackendID(t, l.lb.pinPath, b2)

	// Break only b2's tunnel: its aird no longer decapsulates, so
	// encapsulated packets to b2 are dropped by b2's kernel.
	decap, key := breakDecap(t, l.backends[1].pinPath, b2)
	// A direct connection from the LB to b2's address still works.
	if who := dialFrom(t, l.lbNS, "["+b2+"]:8080"); who != "b2" {
		t.Fatalf("direct connection to b2 answered by %q", who)
	}
	l.waitHealthy(t, b1)
	if got := pinnedTable(t, l.lb.pinPath, labVIP, 8080); got[b2ID] != 0 || got[b1ID] == 0 {
		t.Fatalf("Maglev table with b2's tunnel broken: %v (b1 id %d, b2 id %d)", got, b1ID, b2ID)
	}
	for _, b := range l.backendHealth(t) {
		if b.Address.String() == b2 && (b.Health.LastError == "" || b.Health.Failures == 0) {
			t.Fatalf("b2 unhealthy without a recorded failure: %+v", b.Health)
		}
	}
	for i := 0; i < 10; i++ {
		if who, err := l.ask(t); err != nil || who != "b1" {
			t.Fatalf("connection %d with b2's tunnel broken: %q, %v", i, who, err)
		}
	}

	// A direct check does not see the tunnel: b2 comes back although
	// clients could not reach it; back on the tunnel it goes again.
	l.setHealthVia(t, health.ViaDirect)
	l.waitHealthy(t, b1, b2)
	for _, b := range l.backendHealth(t) {
		if b.Health.Via != health.ViaDirect {
			t.Fatalf("after via = \"direct\" backend %s is probed via %q", b.Address, b.Health.Via)
		}
	}
	l.setHealthVia(t, health.ViaTunnel)
	l.waitHealthy(t, b1)

	// The tunnel works again: b2 is healthy and in the table again, and
	// takes connections.
	if err := decap.Put(&key, uint32(bpf.DatapathNodeAddrFlagsNODE_ADDR_F_DECAP)); err != nil {
		t.Fatalf("restore b2's decap address: %v", err)
	}
	l.waitHealthy(t, b1, b2)
	if got := pinnedTable(t, l.lb.pinPath, labVIP, 8080); got[b2ID] == 0 || got[b1ID] == 0 {
		t.Fatalf("Maglev table with b2's tunnel fixed: %v (b1 id %d, b2 id %d)", got, b1ID, b2ID)
	}
	seen := map[string]int{}
	for i := 0; i < 40 && seen["b2"] == 0; i++ {
		who, err := l.ask(t)
		if err != nil {
			t.Fatalf("connection %d after the tunnel was fixed: %v", i, err)
		}
		seen[who]++
	}
	if seen["b2"] == 0 {
		t.Fatalf("no connection reached b2 after its tunnel was fixed: %v", seen)
	}
}

// TestLBHealthThroughTunnelIPv4: an IPv4 VIP with IPv6 backends is probed
// from the LB's IPv4 underlay address through IPv4-in-IPv6, and a broken
// tunnel takes the backend out the same way.
func TestLBHealthThroughTunnelIPv4(t *testing.T) {
	const vip4, b1, b2 = "10.200.0.13", "fd00:2::2", "fd00:3::2"
	wire := func(l *lbLab) {
		testutil.Addr(t, l.lbNS, "l0", "10.0.1.1/24")
		for i, ns := range l.backendNS {
			net4 := fmt.Sprintf("10.0.%d", i+2)
			testutil.Addr(t, l.lbNS, fmt.Sprintf("l%d", i+1), net4+".1/24")
			testutil.Addr(t, ns, "e0", net4+".2/24")
			testutil.Run(t, "ip", "-n", ns, "-4", "route", "add", "default", "via", net4+".1")
			testutil.Addr(t, ns, "lo", vip4+"/32")
		}
	}
	l := newLBLabWith(t, lbLabOptions{wire: wire, lbUnderlay: []string{"10.0.1.1"}, lbTables: fmt.Sprintf(`
[[ipam.pools]]
name = "hc4"
kind = "service"
prefixes = ["10.200.0.0/24"]
[[services]]
name = "hc4"
vip = %q
port = 8080
backends = [{ address = %q }, { address = %q }]
health-check = { type = "tcp", interval = "300ms", timeout = "250ms", rise = 1, fall = 3 }
`, vip4, b1, b2)})
	l.waitServiceHealthy(t, "hc4", b1, b2)
	for _, b := range l.serviceHealth(t, "hc4") {
		if b.Health.Via != health.ViaTunnel || b.Health.Fallback != "" {
			t.Fatalf("backend %s of hc4 probed via %q (fallback %q), want the tunnel", b.Address, b.Health.Via, b.Health.Fallback)
		}
	}
	decap, key := breakDecap(t, l.backends[1].pinPath, b2)
	l.waitServiceHealthy(t, "hc4", b1)
	if err := decap.Put(&key, uint32(bpf.DatapathNodeAddrFlagsNODE_ADDR_F_DECAP)); err != nil {
		t.Fatal(err)
	}
	l.waitServiceHealthy(t, "hc4", b1, b2)
}

// TestLBHealthTunnelAcrossRestart: the probe routing and the probe program
// stay while the LB's aird restarts, the next aird adopts the program's
// link, and an intended stop (aird --cleanup here) removes them.
func TestLBHealthTunnelAcrossRestart(t *testing.T) {
	l := newLBLab(t)
	l.lb.stopForRestart()
	testutil.InNetns(t, l.lbNS, func() {
		if ok, err := datapath.ProbeRoutingInstalled(); !ok || err != nil {
			t.Fatalf("probe routing gone while aird restarts: %v", err)
		}
	})
	before := pinnedLBStat(t, l.lb.pinPath, bpf.DatapathLbStatLB_STAT_HC_ENCAP)
	l.lb.start()
	if !testutil.WaitFor(10*time.Second, func() bool {
		return pinnedLBStat(t, l.lb.pinPath, bpf.DatapathLbStatLB_STAT_HC_ENCAP) > before
	}) {
		t.Fatal("the restarted aird's probes do not go through the probe program")
	}
	if !strings.Contains(l.lb.log.String(), "adopted pinned probe link") {
		t.Fatalf("the restarted aird did not adopt the probe link:\n%s", l.lb.log.String())
	}
	l.waitHealthy(t, "fd00:2::2", "fd00:3::2")

	// Teardown (aird --cleanup) in the LB's namespace removes it all.
	l.lb.kill()
	testutil.InNetns(t, l.lbNS, func() {
		if err := datapath.Teardown(l.lb.pinPath); err != nil {
			t.Fatal(err)
		}
		if ok, err := datapath.ProbeRoutingInstalled(); ok || err != nil {
			t.Fatalf("probe routing left after teardown (err %v)", err)
		}
	})
}

// breakDecap removes addr from the decap addresses of the aird pinned at
// pin: tunnel packets to addr are no longer decapsulated (the backend's
// kernel drops them) while plain packets to addr still arrive. Put key back
// into the returned map to repair it.
func breakDecap(t *testing.T, pin, addr string) (*ebpf.Map, bpf.DatapathAddrKey) {
	t.Helper()
	decap, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", bpf.DatapathMapNodeAddrs), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { decap.Close() })
	key := bpf.DatapathAddrKey{Addr: bpf.Addr16(netip.MustParseAddr(addr))}
	if err := decap.Delete(&key); err != nil {
		t.Fatalf("remove decap address %s: %v", addr, err)
	}
	return decap, key
}

// backendHealth returns the LB's view of the backends of service "web".
func (l *lbLab) backendHealth(t *testing.T) []api.LBBackendState {
	t.Helper()
	return l.serviceHealth(t, "web")
}

// serviceHealth returns the LB's view of the backends of a service.
func (l *lbLab) serviceHealth(t *testing.T, name string) []api.LBBackendState {
	t.Helper()
	out, errs, code := l.lb.airctl("lb", "backends", "-o", "json")
	if code != 0 {
		t.Fatalf("airctl lb backends: %s", errs)
	}
	var ss []api.LBService
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		t.Fatalf("airctl lb backends -o json: %v\n%s", err, out)
	}
	for _, s := range ss {
		if s.Name == name {
			return s.Backends
		}
	}
	t.Fatalf("no service %s in:\n%s", name, out)
	return nil
}

// setHealthVia rewrites the health-check path of the lab's service "web"
// and reloads the LB's aird.
func (l *lbLab) setHealthVia(t *testing.T, via string) {
	t.Helper()
	b, err := os.ReadFile(l.lb.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	if i := strings.Index(cfg, "\nvia = "); i >= 0 {
		cfg = cfg[:i] + cfg[i+strings.IndexByte(cfg[i+1:], '\n')+1:]
	}
	cfg = strings.Replace(cfg, "[services.health-check]\n", "[services.health-check]\nvia = \""+via+"\"\n", 1)
	l.lb.writeConfig(cfg)
	if _, errs, code := l.lb.airctl("reload"); code != 0 {
		t.Fatalf("reload with via = %q: %s", via, errs)
	}
}

// dialFrom connects to addr from namespace ns and returns the first line
// the server sends (the lab's servers say their name).
func dialFrom(t *testing.T, ns, addr string) string {
	t.Helper()
	var line string
	testutil.InNetns(t, ns, func() {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("connect %s from %s: %v", addr, ns, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("read from %s: %v", addr, err)
		}
	})
	return strings.TrimSpace(line)
}

// pinnedBackendID finds the id of a backend address in the pinned backends
// map of a running aird.
func pinnedBackendID(t *testing.T, pin, addr string) uint32 {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", bpf.DatapathMapBackends), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := bpf.Addr16(netip.MustParseAddr(addr))
	var be bpf.DatapathBackend
	for id := uint32(1); id < m.MaxEntries(); id++ {
		if err := m.Lookup(id, &be); err != nil {
			t.Fatal(err)
		}
		if be.Flags&uint32(bpf.DatapathBackendFlagsBACKEND_F_VALID) != 0 && be.Addr == want {
			return id
		}
	}
	t.Fatalf("backend %s not in the pinned backends map", addr)
	return 0
}

// pinnedLBStat sums one event counter of a running aird over CPUs.
func pinnedLBStat(t *testing.T, pin string, s bpf.DatapathLbStat) uint64 {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", bpf.MapStats), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := bpf.SumPipelineCounters(m)
	if err != nil {
		t.Fatal(err)
	}
	return c.Events[s]
}
