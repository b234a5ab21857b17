package integration

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// The live benchmark sends every frame to one service (lbBenchVIP, UDP
// port 9) whatever the number of VIPs configured. What can differ for that
// service's packet with more VIPs is where its entries sit in the
// daemon's maps: placement reads it back from the pinned maps, so a run
// shows it beside the figures.

// placement describes where the generator's service sits in an aird
// node's maps: its vip id, its vip_sets set and way, how full that set is,
// and its Maglev table (an inner map shared by every VIP with the same
// backends).
type placement struct {
	vipID             uint32
	set, sets         uint32
	way, used         int // way -1: not in the set (looked up in vips)
	overflow          uint32
	table             uint32 // the Maglev table's map id
	tableVIPs, tables int    // VIPs sharing that table; distinct tables
}

func (p placement) String() string {
	return fmt.Sprintf("vip id %d; vip_sets set %d of %d, way %d (%d of %d ways used, overflow %d); Maglev table map id %d, shared by %d VIPs (%d tables)",
		p.vipID, p.set, p.sets, p.way, p.used, len(bpf.DatapathVipSet{}.Way), p.overflow, p.table, p.tableVIPs, p.tables)
}

// servicePlacement reads the placement of (vip, udp, port) from the maps
// pinned under pin.
func servicePlacement(t *testing.T, pin string, vip netip.Addr, port uint16) placement {
	t.Helper()
	load := func(name string) *ebpf.Map {
		m, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", name), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	const udp = 17
	k := bpf.VIPKey(vip, udp, port)
	var v bpf.DatapathVipValue
	if err := load(bpf.DatapathMapVips).Lookup(&k, &v); err != nil {
		t.Fatalf("vips: the benchmark's service: %v", err)
	}
	p := placement{vipID: v.VipId, way: -1}
	sets := load(bpf.DatapathMapVipSetsV2)
	p.sets = sets.MaxEntries()
	p.set = bpf.VIPSetIndex(k) & (p.sets - 1)
	var s bpf.DatapathVipSet
	if err := sets.Lookup(p.set, &s); err != nil {
		t.Fatalf("vip_sets: %v", err)
	}
	p.overflow = s.Overflow
	for w, x := range s.Way {
		if x.Key.Pad != 0 {
			p.used++
		}
		key := x.Key
		key.Pad = 0
		if x.Key.Pad != 0 && key == k {
			p.way = w
		}
	}
	mg := load(bpf.DatapathMapMaglevV2)
	if err := mg.Lookup(p.vipID, &p.table); err != nil {
		t.Fatalf("maglev_v2: vip id %d: %v", p.vipID, err)
	}
	distinct := map[uint32]bool{}
	var id, inner uint32
	it := mg.Iterate()
	for it.Next(&id, &inner) {
		distinct[inner] = true
		if inner == p.table {
			p.tableVIPs++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("maglev_v2: %v", err)
	}
	p.tables = len(distinct)
	return p
}

// loadAverage is the machine's 1-minute load average (/proc/loadavg),
// printed with every round: the machine is shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// pairedRatios compares every aird node with base round by round: its
// ns/pkt over base's in the same round, the median and range over the
// rounds. A load that changes between rounds (this machine is shared)
// moves the medians of ns/pkt apart; within a round every node meets the
// same load, so the ratio of the round is what to read. "" without base.
func pairedRatios(chains []*lbChain, base string, windows func(name string) []window) string {
	b := windows(base)
	if len(b) == 0 {
		return ""
	}
	var parts []string
	for _, c := range chains {
		if c.lb == nil || c.name == base {
			continue
		}
		w := windows(c.name)
		var rs []float64
		for r := range min(len(w), len(b)) {
			rs = append(rs, ratio(w[r].nsPerPkt, b[r].nsPerPkt))
		}
		if len(rs) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.3fx (%.3f-%.3f)", c.name, median(rs), slices.Min(rs), slices.Max(rs)))
	}
	return fmt.Sprintf("ns/pkt over %s's in the same round (median of rounds, range): %s", base, strings.Join(parts, ", "))
}
