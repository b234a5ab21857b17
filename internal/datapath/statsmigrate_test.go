package datapath

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// oldStats is what an older version's counter maps held, per CPU.
type oldStats struct {
	family [][]bpf.DatapathFamilyCounter // [family][cpu]
	events [][]uint64                    // [lb_stat][cpu]
	drops  [][]uint64                    // [drop_reason][cpu]
}

// pinOldStats creates and pins, under p, the counter maps an older version
// had (family_stats, lb_stats, drop_stats with their sizes then), holding
// distinct counts on every CPU, and returns them.
func pinOldStats(t *testing.T, p pins, cpus int) oldStats {
	t.Helper()
	var o oldStats
	pin := func(name string, valueSize, entries uint32, put func(m *ebpf.Map, k uint32) error) {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: valueSize, MaxEntries: entries})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		for k := range entries {
			if err := put(m, k); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Pin(p.mapPath(name)); err != nil {
			t.Fatal(err)
		}
	}
	pin(bpf.MapFamilyStatsV1, 16, uint32(bpf.DatapathFamilyFAMILY_MAX), func(m *ebpf.Map, k uint32) error {
		v := make([]bpf.DatapathFamilyCounter, cpus)
		for c := range v {
			v[c] = bpf.DatapathFamilyCounter{Packets: uint64(1000*(c+1) + int(k)), Bytes: uint64(100000*(c+1) + int(k))}
		}
		o.family = append(o.family, v)
		return m.Put(k, v)
	})
	u64s := func(dst *[][]uint64, base int) func(m *ebpf.Map, k uint32) error {
		return func(m *ebpf.Map, k uint32) error {
			v := make([]uint64, cpus)
			for c := range v {
				v[c] = uint64(base*(c+1) + int(k))
			}
			*dst = append(*dst, v)
			return m.Put(k, v)
		}
	}
	pin(bpf.MapEventStatsV1, 8, 64, u64s(&o.events, 7000))
	pin(bpf.MapDropStatsV1, 8, 64, u64s(&o.drops, 300))
	return o
}

// TestStatsMigration: an upgrade from a version whose counters lived in
// three per-CPU maps (family_stats, lb_stats, drop_stats) carries every
// count over, CPU by CPU, into pipeline_stats: the metrics' sums are what
// they were, each CPU's value is its old one (so a later packet adds on
// top), the old pins are gone once the new program is attached, and a
// restart that adopts pipeline_stats does not add them again.
func TestStatsMigration(t *testing.T) {
	pin, p, logs, cpus, old := olderStatsPinned(t)

	d2 := openSmall(t, pin, logs)
	per, err := bpf.PipelineCountersPerCPU(d2.objs.Pipeline.Stats)
	if err != nil {
		t.Fatal(err)
	}
	for c := range cpus {
		for f := range old.family {
			if per[c].Family[f] != old.family[f][c] {
				t.Errorf("cpu %d family %s = %+v, want %+v", c, bpf.DatapathFamily(f), per[c].Family[f], old.family[f][c])
			}
		}
		for k := range old.events {
			if per[c].Events[k] != old.events[k][c] || per[c].Drops[k] != old.drops[k][c] {
				t.Errorf("cpu %d slot %d: event %d drop %d, want %d and %d", c, k,
					per[c].Events[k], per[c].Drops[k], old.events[k][c], old.drops[k][c])
			}
		}
	}
	want := wantStats(old)
	checkStats(t, d2, want)
	if err := d2.SetUplinks(nil); err != nil {
		t.Fatal(err)
	}
	requirePins(t, p, oldStatsMaps, false)
	if !logged(logs, "carried the older counters over") {
		t.Errorf("no carry-over logged:\n%s", logs.String())
	}

	// A packet counts on top of the carried counts (an IPv6 frame without
	// its IPv6 header: malformed).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := allowedCPUs(t)[0]
	onCPU(t, cpu, func() {
		ret, err := d2.objs.Programs.XDP.Run(&ebpf.RunOptions{Data: []byte{12: 0x86, 13: 0xdd}})
		if err != nil || ret != 2 { // XDP_PASS
			t.Fatalf("run: %d, %v", ret, err)
		}
	})
	want.family["malformed"] = Counter{Packets: want.family["malformed"].Packets + 1, Bytes: want.family["malformed"].Bytes + 14}
	checkStats(t, d2, want)
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}

	d3 := openSmall(t, pin, logs)
	checkStats(t, d3, want)
	if !logged(logs, "adopted pinned map", "map="+bpf.MapStats+" ") {
		t.Errorf("pipeline_stats not adopted on restart:\n%s", logs.String())
	}
}

// TestStatsMigrationSkipsAnUnreadableMap: an older counter map of another
// layout is not carried over (a warning says so) and does not keep the
// others from being carried over or the datapath from opening.
func TestStatsMigrationSkipsAnUnreadableMap(t *testing.T) {
	pin, p, logs, _, old := olderStatsPinned(t)
	// lb_stats replaced by one of another layout.
	if err := removePin(p.mapPath(bpf.MapEventStatsV1)); err != nil {
		t.Fatal(err)
	}
	bogus, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer bogus.Close()
	if err := bogus.Pin(p.mapPath(bpf.MapEventStatsV1)); err != nil {
		t.Fatal(err)
	}
	old.events = nil

	d2 := openSmall(t, pin, logs)
	checkStats(t, d2, wantStats(old))
	if !logged(logs, "older counters not (all) carried over", bpf.MapEventStatsV1) {
		t.Errorf("no warning about the unreadable lb_stats:\n%s", logs.String())
	}
	// The map not carried over stays pinned through this run; the next
	// start, which adopts pipeline_stats, removes it once attached.
	if err := d2.SetUplinks(nil); err != nil {
		t.Fatal(err)
	}
	requirePins(t, p, []string{bpf.MapEventStatsV1}, true)
	requirePins(t, p, []string{bpf.MapFamilyStatsV1, bpf.MapDropStatsV1}, false)
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	d3 := openSmall(t, pin, logs)
	if err := d3.SetUplinks(nil); err != nil {
		t.Fatal(err)
	}
	requirePins(t, p, []string{bpf.MapEventStatsV1}, false)
	checkStats(t, d3, wantStats(old))
}

// TestOlderPinsKeptUntilAttached: a start that carries the older counters
// over but fails before its program is attached (Open, then Close without
// SetUplinks) leaves the older maps pinned with their counts, for a
// rollback to the older version; the next start adopts pipeline_stats
// without adding them again, and removes them once it is attached.
func TestOlderPinsKeptUntilAttached(t *testing.T) {
	pin, p, logs, cpus, old := olderStatsPinned(t)

	d2 := openSmall(t, pin, logs)
	want := wantStats(old)
	checkStats(t, d2, want)
	if err := d2.Close(); err != nil { // the start fails here
		t.Fatal(err)
	}
	requirePins(t, p, oldStatsMaps, true)
	for _, name := range oldStatsMaps {
		m, err := ebpf.LoadPinnedMap(p.mapPath(name), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		if name != bpf.MapFamilyStatsV1 {
			if err := m.Lookup(uint32(3), &got); err != nil || len(got) != cpus {
				t.Fatalf("%s[3]: %v, %v", name, got, err)
			}
			src := old.events
			if name == bpf.MapDropStatsV1 {
				src = old.drops
			}
			if !slices.Equal(got, src[3]) {
				t.Errorf("%s[3] = %v after the failed start, want %v", name, got, src[3])
			}
		}
		m.Close()
	}

	d3 := openSmall(t, pin, logs)
	if !logged(logs, "adopted pinned map", "map="+bpf.MapStats+" ") {
		t.Fatalf("pipeline_stats not adopted:\n%s", logs.String())
	}
	checkStats(t, d3, want)
	requirePins(t, p, oldStatsMaps, true)
	if err := d3.SetUplinks(nil); err != nil {
		t.Fatal(err)
	}
	requirePins(t, p, oldStatsMaps, false)
}

// requirePins fails unless every map of names is pinned under p (want) or
// none is.
func requirePins(t *testing.T, p pins, names []string, want bool) {
	t.Helper()
	for _, name := range names {
		_, err := os.Stat(p.mapPath(name))
		if want && err != nil {
			t.Errorf("the older pin %s is gone: %v", name, err)
		}
		if !want && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the older pin %s is still there: %v", name, err)
		}
	}
}

// olderStatsPinned pins a small datapath's maps under a new pin path,
// then puts in place of pipeline_stats the counter maps of the older
// version (pinOldStats): an upgrade's starting point.
func olderStatsPinned(t *testing.T) (pin string, p pins, logs *syncBuffer, cpus int, old oldStats) {
	t.Helper()
	testutil.RequirePrivileged(t)
	pin = testutil.TempPinPath(t)
	t.Cleanup(func() { _ = Teardown(pin) })
	logs = &syncBuffer{}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	d1 := openSmall(t, pin, logs)
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	p = pins{root: pin}
	if err := removePin(p.mapPath(bpf.MapStats)); err != nil {
		t.Fatal(err)
	}
	return pin, p, logs, cpus, pinOldStats(t, p, cpus)
}

// statsWant are the sums the datapath's readers should report.
type statsWant struct {
	family        map[string]Counter
	events, drops map[string]uint64
}

func wantStats(o oldStats) statsWant {
	w := statsWant{family: map[string]Counter{}, events: map[string]uint64{}, drops: map[string]uint64{}}
	for _, f := range bpf.Families() {
		var c Counter
		for _, v := range o.family[f] {
			c.Packets += v.Packets
			c.Bytes += v.Bytes
		}
		w.family[f.String()] = c
	}
	for _, s := range bpf.LBStats() {
		w.events[s.String()] = 0
		if o.events != nil {
			for _, v := range o.events[s] {
				w.events[s.String()] += v
			}
		}
	}
	for _, r := range bpf.DropReasons() {
		for _, v := range o.drops[r] {
			w.drops[r.String()] += v
		}
	}
	return w
}

// checkStats fails unless d's PipelineStats (families, events, drops)
// are want.
func checkStats(t *testing.T, d *Datapath, want statsWant) {
	t.Helper()
	ps, err := d.PipelineStats()
	if err != nil {
		t.Fatal(err)
	}
	fam, ev, dr := ps.Families(), ps.Events(), ps.Drops()
	for k, v := range want.family {
		if fam[k] != v {
			t.Errorf("Families[%s] = %+v, want %+v", k, fam[k], v)
		}
	}
	for k, v := range want.events {
		if ev[k] != v {
			t.Errorf("Events[%s] = %d, want %d", k, ev[k], v)
		}
	}
	for k, v := range want.drops {
		if dr[k] != v {
			t.Errorf("Drops[%s] = %d, want %d", k, dr[k], v)
		}
	}
}
