package datapath

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

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
	return bpf.NewLB(m)
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
// with another id space replaces the maps sized by it and every map whose
// entries refer to ids - conntrack too, since its entries would now name
// other services and backends.
func TestLBStateSurvivesRestart(t *testing.T) {
	testutil.RequirePrivileged(t)
	pin := testutil.TempPinPath(t)
	t.Cleanup(func() { _ = Teardown(pin) })
	logs := &syncBuffer{}
	open := func(vips, conntrack uint32) *Datapath {
		t.Helper()
		d, err := Open(Options{PinPath: pin, XDPMode: ModeAuto, MaxVIPs: vips, MaxBackends: 64, ConntrackSize: conntrack,
			Logger: testLogger(logs)})
		if err != nil {
			t.Fatalf("Open(%d vips): %v", vips, err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	vip := netip.MustParseAddr("2001:db8:100::1")
	flow := bpf.NewFlowKey(netip.MustParseAddr("2001:db8:c0::5"), vip, 40000, 443, 6)

	d1 := open(64, 4096)
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

	ctEntry := func(d *Datapath) bpf.DatapathCtEntry {
		t.Helper()
		var v bpf.DatapathCtSet
		if err := lbMap(t, d, conntrackOf).Lookup(uint32(0), &v); err != nil {
			t.Fatal(err)
		}
		return v.Way[0]
	}
	tableOf := func(d *Datapath) error {
		t.Helper()
		var id ebpf.MapID
		return lbMap(t, d, maglevOf).Lookup(uint32(9), &id)
	}

	d2 := open(64, 4096)
	if e := ctEntry(d2); e.Key != flow || e.BackendId != 1 || e.VipId != 9 {
		t.Fatalf("conntrack entry after restart: %+v", e)
	}
	if err := tableOf(d2); err != nil {
		t.Fatalf("maglev table of vip 9 lost across a restart: %v", err)
	}
	for _, name := range []string{bpf.MapMaglev, "maglev_meta", bpf.MapConntrack, "vips", "backends", "settings"} {
		if !logged(logs, "adopted pinned map", "map="+name+" ") {
			t.Errorf("no adoption of %s logged:\n%s", name, logs.String())
		}
	}
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}

	d3 := open(128, 4096)
	if e := ctEntry(d3); e != (bpf.DatapathCtEntry{}) {
		t.Fatalf("conntrack kept across a change of the vip id space: %+v", e)
	}
	if err := tableOf(d3); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Fatalf("maglev table still installed after the id space changed: %v", err)
	}
	for _, name := range []string{bpf.MapConntrack, "allow", bpf.DatapathMapBackendCpu} {
		if !logged(logs, "pinned map not adopted: the maps that define its ids are new", "map="+name+" ") {
			t.Errorf("no replacement of %s logged:\n%s", name, logs.String())
		}
	}
	ps, err := d3.PipelineStats()
	if err != nil {
		t.Fatalf("PipelineStats: %v", err)
	}
	if st := ps.Events(); len(st) != len(bpf.LBStats()) {
		t.Fatalf("Events = %v", st)
	} else if _, ok := st["ct_hit"]; !ok {
		t.Fatalf("Events lacks ct_hit: %v", st)
	}
	if drops := ps.Drops(); len(drops) != len(bpf.DropReasons()) || drops["no_backend"] != 0 {
		t.Fatalf("Drops = %v", drops)
	}
}

// A pinned maglev whose inner maps have another layout is replaced. The
// layout is versioned in the map's name (bpf/lb_maps.h), so an upgrade
// finds the old map under its old name ("maglev", one-size tables of u32
// slots) and removes that pin; and should a layout change keep the name,
// the map is replaced all the same: by comparing its inner map when the
// process may open one, and, without CAP_SYS_ADMIN (aird's unit does not
// have it), by the verifier rejecting the program against it and a second
// load without it.
func TestOldMaglevLayoutReplaced(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, capSysAdmin := range []bool{true, false} {
		t.Run(fmt.Sprintf("CAP_SYS_ADMIN=%v", capSysAdmin), func(t *testing.T) {
			pin := testutil.TempPinPath(t)
			t.Cleanup(func() { _ = Teardown(pin) })
			logs := &syncBuffer{}
			d0, err := Open(Options{PinPath: pin, XDPMode: ModeAuto, ConntrackSize: 4096, Logger: testLogger(logs)})
			if err != nil {
				t.Fatal(err)
			}
			if err := d0.Close(); err != nil {
				t.Fatal(err)
			}
			oldInner := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 251}
			outer, err := ebpf.NewMap(&ebpf.MapSpec{Name: "maglev", Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4,
				MaxEntries: bpf.DefaultMaxVIPs, InnerMap: oldInner})
			if err != nil {
				t.Fatal(err)
			}
			if err := outer.Pin((pins{root: pin}).mapPath("maglev")); err != nil { // the old name
				t.Fatal(err)
			}
			outer.Close()
			outer, err = ebpf.NewMap(&ebpf.MapSpec{Name: "maglev", Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4,
				MaxEntries: bpf.DefaultMaxVIPs, InnerMap: oldInner})
			if err != nil {
				t.Fatal(err)
			}
			inner, err := ebpf.NewMap(oldInner)
			if err != nil {
				t.Fatal(err)
			}
			if err := outer.Put(uint32(3), inner); err != nil {
				t.Fatal(err)
			}
			inner.Close()
			if err := pinReplace(outer.Pin, (pins{root: pin}).mapPath(bpf.MapMaglev)); err != nil { // the name kept
				t.Fatal(err)
			}
			outer.Close()
			var d *Datapath
			open := func() {
				d, err = Open(Options{PinPath: pin, XDPMode: ModeAuto, ConntrackSize: 4096, Logger: testLogger(logs)})
			}
			if capSysAdmin {
				open()
			} else {
				withoutCapSysAdmin(t, open)
			}
			if err != nil {
				t.Fatalf("Open over an old maglev: %v", err)
			}
			defer d.Close()
			if err := d.SetUplinks(nil); err != nil {
				t.Fatal(err)
			}
			if err := lbOf(t, d).SetTable(3, []uint32{0, 0, 0, 0, 0, 0, 0}); err != nil {
				t.Fatalf("installing a table after the replacement: %v", err)
			}
			want := "pinned map-in-map not adopted"
			if !capSysAdmin {
				want = "loading with the pinned map-in-maps failed; replacing them"
			}
			for _, w := range []string{want, "removed the pin of a map this version does not have"} {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("no %q in the log:\n%s", w, logs.String())
				}
			}
		})
	}
}

// withoutCapSysAdmin runs f on a thread whose effective capabilities lack
// CAP_SYS_ADMIN, as aird's systemd unit has them.
func withoutCapSysAdmin(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // the thread is discarded with its capabilities
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			t.Errorf("capget: %v", err)
			return
		}
		data[0].Effective &^= 1 << unix.CAP_SYS_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			t.Errorf("capset: %v", err)
			return
		}
		f()
	}()
	<-done
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

// An upgrade from the layout before backend_cpu (the next-hop cache in
// nexthops, the backend counters in backend_stats, each a map of its own)
// adopts every other map - conntrack's established flows, the services,
// the VIP counters - creates backend_cpu (the backend counters start again
// from zero, as docs/architecture.md says) and removes the two old pins.
func TestBackendCPUUpgrade(t *testing.T) {
	testutil.RequirePrivileged(t)
	pin := testutil.TempPinPath(t)
	t.Cleanup(func() { _ = Teardown(pin) })
	logs := &syncBuffer{}
	open := func() *Datapath { return openSmall(t, pin, logs) }
	vip := netip.MustParseAddr("2001:db8:100::1")
	flow := bpf.NewFlowKey(netip.MustParseAddr("2001:db8:c0::5"), vip, 40000, 443, 6)
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}

	d1 := open()
	if err := lbOf(t, d1).SetService(vip, 6, 443, 9, 0); err != nil {
		t.Fatal(err)
	}
	var set bpf.DatapathCtSet
	set.Way[0] = bpf.DatapathCtEntry{Key: flow, BackendId: 1, VipId: 9, LastSeen: 1}
	if err := lbMap(t, d1, conntrackOf).Put(uint32(0), &set); err != nil {
		t.Fatal(err)
	}
	vipCount := make([]bpf.DatapathCounter, cpus)
	vipCount[0] = bpf.DatapathCounter{Packets: 7, Bytes: 700}
	if err := lbMap(t, d1, func(m bpf.LBMaps) *ebpf.Map { return m.VipStats }).Put(uint32(9), vipCount); err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	// What the older version pinned instead of backend_cpu.
	p := pins{root: pin}
	if err := removePin(p.mapPath(bpf.DatapathMapBackendCpu)); err != nil {
		t.Fatal(err)
	}
	old := map[string]uint32{"nexthops": 32, "backend_stats": 16}
	for name, size := range old {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: size, MaxEntries: 65})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Pin(p.mapPath(name))
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
	}

	d2 := open()
	var got bpf.DatapathCtSet
	if err := lbMap(t, d2, conntrackOf).Lookup(uint32(0), &got); err != nil || got.Way[0].Key != flow {
		t.Fatalf("conntrack entry after the upgrade: %+v, %v", got.Way[0], err)
	}
	vc, err := lbOf(t, d2).VIPCounters([]uint32{9})
	if err != nil || vc[9] != vipCount[0] {
		t.Fatalf("VIP counters after the upgrade = %v, %v; want %+v", vc, err, vipCount[0])
	}
	bc, err := lbOf(t, d2).BackendCounters([]uint32{1})
	if err != nil || bc[1] != (bpf.DatapathCounter{}) {
		t.Fatalf("backend counters after the upgrade = %v, %v; want zero", bc, err)
	}
	for _, name := range []string{bpf.MapConntrack, "vips", "vip_stats"} {
		if !logged(logs, "adopted pinned map", "map="+name+" ") {
			t.Errorf("no adoption of %s logged:\n%s", name, logs.String())
		}
	}
	if err := d2.SetUplinks(nil); err != nil { // the old pins go once attached
		t.Fatal(err)
	}
	for name := range old {
		if _, err := os.Stat(p.mapPath(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the old pin %s is still there: %v", name, err)
		}
	}
	if _, err := os.Stat(p.mapPath(bpf.DatapathMapBackendCpu)); err != nil {
		t.Errorf("backend_cpu not pinned: %v", err)
	}
}
