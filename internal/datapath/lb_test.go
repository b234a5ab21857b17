package datapath

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// lbOf returns a bpf.LB over the datapath's lb maps.
func lbOf(t *testing.T, d *Datapath) *bpf.LB {
	t.Helper()
	m, err := d.LBMaps()
	if err != nil {
		t.Fatal(err)
	}
	return bpf.NewLB(m, d.MaglevTableSize())
}

// lbMap returns one of the datapath's lb maps.
func lbMap(t *testing.T, d *Datapath, pick func(bpf.LBMaps) *ebpf.Map) *ebpf.Map {
	t.Helper()
	m, err := d.LBMaps()
	if err != nil {
		t.Fatal(err)
	}
	return pick(m)
}

func conntrackOf(m bpf.LBMaps) *ebpf.Map { return m.Conntrack }
func maglevOf(m bpf.LBMaps) *ebpf.Map    { return m.Maglev }

// The load balancer's state lives in pinned maps: a restart with the same
// sizes adopts all of it (established flows keep their backend); a restart
// with another Maglev table size replaces only the maglev map.
func TestLBStateSurvivesRestart(t *testing.T) {
	testutil.RequirePrivileged(t)
	pin := testutil.TempPinPath(t)
	t.Cleanup(func() { _ = Teardown(pin) })
	logs := &syncBuffer{}
	open := func(size uint32) *Datapath {
		t.Helper()
		d, err := Open(Options{PinPath: pin, XDPMode: ModeAuto, MaglevTableSize: size, ConntrackSize: 4096,
			Logger: testLogger(logs)})
		if err != nil {
			t.Fatalf("Open(maglev %d): %v", size, err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	vip := netip.MustParseAddr("2001:db8:100::1")
	flow := bpf.NewFlowKey(netip.MustParseAddr("2001:db8:c0::5"), vip, 40000, 443, 6)

	d1 := open(251)
	if d1.MaglevTableSize() != 251 {
		t.Fatalf("MaglevTableSize = %d", d1.MaglevTableSize())
	}
	lb := lbOf(t, d1)
	if err := lb.SetBackend(1, netip.MustParseAddr("2001:db8:be::1")); err != nil {
		t.Fatal(err)
	}
	if err := lb.SetService(vip, 6, 443, 9, 0); err != nil {
		t.Fatal(err)
	}
	table := make([]uint32, 251)
	for i := range table {
		table[i] = 1
	}
	if err := lb.SetTable(9, table); err != nil {
		t.Fatal(err)
	}
	ct := lbMap(t, d1, conntrackOf)
	var set bpf.DatapathCtSet
	set.Way[0] = bpf.DatapathCtEntry{Key: flow, BackendId: 1, VipId: 9, LastSeen: 1}
	if err := ct.Put(uint32(0), &set); err != nil {
		t.Fatalf("conntrack put: %v", err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}

	checkCT := func(d *Datapath) {
		t.Helper()
		m := lbMap(t, d, conntrackOf)
		var v bpf.DatapathCtSet
		if err := m.Lookup(uint32(0), &v); err != nil || v.Way[0].Key != flow || v.Way[0].BackendId != 1 || v.Way[0].VipId != 9 {
			t.Fatalf("conntrack entry after restart: %+v, %v", v.Way[0], err)
		}
	}
	tableOf := func(d *Datapath) error {
		t.Helper()
		m := lbMap(t, d, maglevOf)
		var id ebpf.MapID
		return m.Lookup(uint32(9), &id)
	}

	d2 := open(251)
	checkCT(d2)
	if err := tableOf(d2); err != nil {
		t.Fatalf("maglev table of vip 9 lost across a restart: %v", err)
	}
	for _, name := range []string{"maglev", "conntrack", "vips", "backends", "settings"} {
		if !logged(logs, "adopted pinned map", "map="+name+" ") {
			t.Errorf("no adoption of %s logged:\n%s", name, logs.String())
		}
	}
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}

	d3 := open(257)
	checkCT(d3)
	if err := tableOf(d3); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Fatalf("maglev table of the old size still installed after a size change: %v", err)
	}
	if !strings.Contains(logs.String(), "pinned map-in-map not adopted") {
		t.Errorf("maglev replacement not logged:\n%s", logs.String())
	}
	lb3 := lbOf(t, d3)
	if err := lb3.SetTable(9, make([]uint32, 257)); err != nil {
		t.Fatalf("installing a table of the new size: %v", err)
	}
	if err := lb3.SetTable(9, table); err == nil {
		t.Fatalf("a table of the old size was accepted")
	}
	st, err := d3.LBStats()
	if err != nil || len(st) != len(bpf.LBStats()) {
		t.Fatalf("LBStats = %v, %v", st, err)
	}
	if _, ok := st["ct_hit"]; !ok {
		t.Fatalf("LBStats lacks ct_hit: %v", st)
	}
	drops, err := d3.DropStats()
	if err != nil || len(drops) != len(bpf.DropReasons()) || drops["no_backend"] != 0 {
		t.Fatalf("DropStats = %v, %v", drops, err)
	}
}

func testLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logged reports whether one log line contains all parts.
func logged(logs *syncBuffer, parts ...string) bool {
	for _, line := range strings.Split(logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
