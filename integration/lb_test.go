package integration

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

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
	outer, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", bpf.DatapathMapMaglev), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	var id ebpf.MapID
	if err := outer.Lookup(v.VipId, &id); err != nil {
		t.Fatalf("no Maglev table for vip id %d: %v", v.VipId, err)
	}
	inner, err := ebpf.NewMapFromID(id)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	counts := map[uint32]int{}
	for i := uint32(0); i < inner.MaxEntries(); i++ {
		var be uint32
		if err := inner.Lookup(i, &be); err != nil {
			t.Fatal(err)
		}
		counts[be]++
	}
	return counts
}

// TestServicesProgrammedIntoXDP: the services of the configuration land in
// the XDP data plane's maps, and the Maglev table follows backend health.
func TestServicesProgrammedIntoXDP(t *testing.T) {
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
	stop2()
	if !testutil.WaitFor(5*time.Second, func() bool { return len(pinnedTable(t, n.pinPath, "fd00:300::10", 80)) == 1 }) {
		t.Fatalf("the failed backend stayed in the Maglev table: %v", pinnedTable(t, n.pinPath, "fd00:300::10", 80))
	}
	// A restart adopts the programmed ids (conntrack entries refer to
	// them): the backends keep theirs. Backends start healthy after a
	// restart, so both are in the table again until the probes say
	// otherwise.
	n.stop()
	n.start()
	after := pinnedTable(t, n.pinPath, "fd00:300::10", 80)
	if len(after) != 2 {
		t.Fatalf("Maglev table after a restart: %v", after)
	}
	for id := range after {
		if _, ok := tbl[id]; !ok {
			t.Fatalf("backend ids changed across a restart: %v before, %v after", tbl, after)
		}
	}
}
