package datapath

import (
	"net/netip"
	"os"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// TestConntrackMigration: an upgrade from a version whose conntrack was
// placed by the flow hash (the pinned map "conntrack", entries without the
// kept hash bits, and its summary "ct_tags") keeps every established flow.
// The older version's maps are built here as it left them - its
// conntrack with flows of several clients and ports, each in the set the
// flow hash gave it on the CPU the test runs on, and one on another CPU's
// partition - over the pins of a datapath that programmed a service whose
// Maglev table sends every flow to backend 2 while the flows are tracked
// to backend 1. The next start migrates: each flow sits in its new set of
// its own CPU's partition with the flow hash bits of the pinned seed, the
// old pins are gone, the new summary is all unknown, and each flow's packet
// hits (ct_hit, no ct_miss) and goes to backend 1.
func TestConntrackMigration(t *testing.T) {
	testutil.RequirePrivileged(t)
	pin := testutil.TempPinPath(t)
	t.Cleanup(func() { _ = Teardown(pin) })
	logs := &syncBuffer{}
	open := func() *Datapath { return openSmall(t, pin, logs) }
	const seed = 0x61697264
	vip := netip.MustParseAddr("2001:db8:100::1")
	d1 := open()
	if err := d1.SetSettings(bpf.Settings{Src6: netip.MustParsePrefix("2001:db8:5::/96"), HashSeed: seed}); err != nil {
		t.Fatal(err)
	}
	lb := lbOf(t, d1)
	for id, a := range map[uint32]string{1: "2001:db8:be::1", 2: "2001:db8:be::2"} {
		if err := lb.SetBackend(id, netip.MustParseAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := lb.SetService(vip, 6, 443, 9, 0); err != nil {
		t.Fatal(err)
	}
	table := make([]uint32, 251)
	for i := range table {
		table[i] = 2
	}
	if err := lb.SetTable(9, table); err != nil {
		t.Fatal(err)
	}
	ctNew := lbMap(t, d1, conntrackOf)
	size, ctSpec := ctNew.MaxEntries(), &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: ctNew.ValueSize(), MaxEntries: ctNew.MaxEntries()}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	sets := size / uint32(ncpu)
	cpu := uint32(allowedCPUs(t)[0])
	other := (cpu + 1) % uint32(ncpu)

	// The older version's conntrack and ct_tags, in place of this one's.
	type flow struct {
		key bpf.DatapathFlowKey
		cpu uint32
	}
	var flows []flow
	for c := range 8 {
		client := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0xc0, 15: byte(c + 1)})
		for p := range 4 {
			flows = append(flows, flow{bpf.NewFlowKey(client, vip, uint16(40000+101*p+c), 443, 6), cpu})
		}
	}
	if other != cpu {
		flows = append(flows, flow{bpf.NewFlowKey(netip.MustParseAddr("2001:db8:c0::99"), vip, 50000, 443, 6), other})
	}
	old, err := ebpf.NewMap(ctSpec)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oldSets := map[uint32]*bpf.DatapathCtSet{}
	for _, f := range flows {
		idx := bpf.ConntrackIndex(bpf.FlowHash(&f.key, seed), f.cpu, sets) // the older placement
		s := oldSets[idx]
		if s == nil {
			s = &bpf.DatapathCtSet{}
			oldSets[idx] = s
		}
		placed := false
		for w := range s.Way {
			if s.Way[w].LastSeen == 0 {
				s.Way[w] = bpf.DatapathCtEntry{Key: f.key, BackendId: 1, VipId: 9, LastSeen: 1001} // established
				placed = true
				break
			}
		}
		if !placed {
			t.Fatalf("test flows fill old set %d: pick others", idx)
		}
	}
	for idx, s := range oldSets {
		if err := old.Put(idx, s); err != nil {
			t.Fatal(err)
		}
	}
	p := pins{root: pin}
	if err := pinReplace(old.Pin, p.mapPath(bpf.MapConntrackV1)); err != nil {
		t.Fatal(err)
	}
	oldTags, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: (size + 1) / 2})
	if err != nil {
		t.Fatal(err)
	}
	defer oldTags.Close()
	if err := pinReplace(oldTags.Pin, p.mapPath("ct_tags")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bpf.MapConntrack, bpf.DatapathMapCtTagsV2} {
		if err := os.Remove(p.mapPath(name)); err != nil {
			t.Fatal(err)
		}
	}

	d2 := open()
	if !logged(logs, "migrated the older conntrack's flows", "flows="+strconv.Itoa(len(flows))+" ", "dropped=0 ") {
		t.Fatalf("no migration of %d flows logged:\n%s", len(flows), logs.String())
	}
	olderCT := []string{bpf.MapConntrackV1, "ct_tags"}
	requirePins(t, p, olderCT, true) // until the new program is attached
	if err := d2.SetUplinks(nil); err != nil {
		t.Fatal(err)
	}
	requirePins(t, p, olderCT, false)
	maps, err := d2.LBMaps()
	if err != nil {
		t.Fatal(err)
	}
	shift := uint32(bpf.DatapathCtHashBitsCT_LABEL_SHIFT)
	for _, f := range flows {
		idx := bpf.ConntrackIndex(bpf.ConntrackHash(&f.key), f.cpu, sets)
		var s bpf.DatapathCtSet
		if err := maps.Conntrack.Lookup(idx, &s); err != nil {
			t.Fatal(err)
		}
		h := bpf.FlowHash(&f.key, seed)
		found := false
		for _, e := range s.Way {
			if e.LastSeen != 0 && e.Key == f.key {
				found = true
				want := bpf.DatapathCtEntry{Key: f.key, BackendId: 1, VipId: 9, LastSeen: 1001,
					Flags: uint32(h) << shift, HashHi: uint32(h >> 32)}
				if e != want {
					t.Errorf("flow %v on cpu %d: entry %+v, want %+v", f.key, f.cpu, e, want)
				}
			}
		}
		if !found {
			t.Errorf("flow %v of cpu %d is not in its new set %d", f.key, f.cpu, idx)
		}
	}
	var tags []uint64
	var k uint32
	var v uint64
	it := maps.CtTags.Iterate()
	for it.Next(&k, &v) {
		if v != 0 {
			tags = append(tags, uint64(k))
		}
	}
	if err := it.Err(); err != nil || len(tags) > 0 {
		t.Errorf("ct_tags_v2 not all unknown after the migration: words %v (%v)", tags, err)
	}

	ps, err := d2.PipelineStats()
	if err != nil {
		t.Fatal(err)
	}
	before := ps.Events()
	bc0, err := bpf.NewLB(maps).BackendCounters([]uint32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	ns := testutil.NewNetns(t, "ctm")
	sent := 0
	testutil.InNetns(t, ns, func() {
		for _, f := range flows {
			if f.cpu != cpu {
				continue
			}
			src := netip.AddrFrom16(f.key.Src)
			in := tcpFrame(t, src, vip, bpf.Ntohs(f.key.Sport), false, 1)
			var err error
			onCPU(t, int(cpu), func() {
				_, err = d2.prog.Run(&ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+512), Repeat: 1})
			})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			sent++
		}
	})
	if ps, err = d2.PipelineStats(); err != nil {
		t.Fatal(err)
	}
	after := ps.Events()
	if hit, miss := after["ct_hit"]-before["ct_hit"], after["ct_miss"]-before["ct_miss"]; hit != uint64(sent) || miss != 0 {
		t.Errorf("%d migrated flows' packets: ct_hit +%d, ct_miss +%d", sent, hit, miss)
	}
	bc, err := bpf.NewLB(maps).BackendCounters([]uint32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if got1, got2 := bc[1].Packets-bc0[1].Packets, bc[2].Packets-bc0[2].Packets; got1 != uint64(sent) || got2 != 0 {
		t.Errorf("packets to the tracked backend 1: %d, to the table's backend 2: %d; want %d and 0", got1, got2, sent)
	}
}

// TestConntrackMigrationKeepsTheWorthiest: more flows than ways in one new
// set keep the established ones first, then the most recently seen.
func TestConntrackMigrationKeepsTheWorthiest(t *testing.T) {
	const sets = 1
	part := newCTPartition(sets)
	vip := netip.MustParseAddr("2001:db8:100::1")
	client := netip.MustParseAddr("2001:db8:c0::5")
	entry := func(port uint16, seen uint64, flags uint32) bpf.DatapathCtEntry {
		return bpf.DatapathCtEntry{Key: bpf.NewFlowKey(client, vip, port, 443, 6), BackendId: 1, LastSeen: seen, Flags: flags}
	}
	isNew := uint32(bpf.DatapathCtFlagsCT_F_NEW)
	in := []bpf.DatapathCtEntry{
		entry(1, 901, isNew), entry(2, 101, 0), entry(3, 501, 0), entry(4, 999, isNew),
		entry(5, 301, 0), entry(6, 701, 0),
	}
	for _, e := range in {
		part.place(e, 0)
	}
	kept := map[uint16]bool{}
	for _, w := range part.sets[0].Way {
		kept[bpf.Ntohs(w.Key.Sport)] = true
	}
	for _, want := range []uint16{2, 3, 5, 6} {
		if !kept[want] {
			t.Errorf("kept %v, want the four established flows 2, 3, 5, 6", kept)
			break
		}
	}
	if part.dropped != 2 {
		t.Errorf("dropped %d, want 2", part.dropped)
	}
}

// openSmall opens a datapath pinned at pin with small maps (64 VIPs, 64
// backends, 4,096 flows), logging into logs, closed when the test ends:
// the upgrade tests open it twice over the same pins.
func openSmall(t *testing.T, pin string, logs *syncBuffer) *Datapath {
	t.Helper()
	d, err := Open(Options{PinPath: pin, XDPMode: ModeAuto, MaxVIPs: 64, MaxBackends: 64, ConntrackSize: 4096,
		Logger: testLogger(logs)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}
