package integration

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/aird-net/aird/bpf"
	"github.com/cilium/ebpf"
)

// TestLBMapsAtDocumentedMaximum: aird starts with lb.max-vips and
// lb.max-backends at the largest values docs/configuration.md allows
// (1,048,576 each), sizes the lb maps for them - vips three entries per
// vip id, vip_sets one set per two of those (2,097,152 sets) - and
// programs a service into vips and into its vip_sets set.
func TestLBMapsAtDocumentedMaximum(t *testing.T) {
	n := newNode(t)
	const max = 1048576
	n.writeConfig(n.config("info", "uplink0") + vipPoolsTOML + `
[lb]
max-vips = 1048576
max-backends = 1048576

[[services]]
name = "web"
vip = "fd00:250::10"
port = 80
health-check = { type = "none" }
backends = [{ address = "fd00:200::1" }]
`)
	n.startWithin(120 * time.Second)
	if st := n.status(); st.State != "running" {
		t.Fatalf("state %q after READY", st.State)
	}
	open := func(name string) *ebpf.Map {
		m, err := ebpf.LoadPinnedMap(filepath.Join(n.pinPath, "maps", name), nil)
		if err != nil {
			t.Fatalf("pinned %s: %v", name, err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	vips, sets := open(bpf.DatapathMapVips), open(bpf.DatapathMapVipSetsV2)
	if got, want := vips.MaxEntries(), uint32(bpf.VIPEntriesPerID*max); got != want {
		t.Errorf("vips holds %d entries, want %d", got, want)
	}
	if got, want := sets.MaxEntries(), bpf.VIPSets(bpf.VIPEntriesPerID*max); got != want || got != 1<<21 {
		t.Errorf("vip_sets has %d sets, want %d (2,097,152)", got, want)
	}
	k := bpf.VIPKey(netip.MustParseAddr("fd00:250::10"), 6, 80)
	var v bpf.DatapathVipValue
	if err := vips.Lookup(&k, &v); err != nil {
		t.Fatalf("the service is not in vips: %v", err)
	}
	var set bpf.DatapathVipSet
	if err := sets.Lookup(bpf.VIPSetIndex(k)&(sets.MaxEntries()-1), &set); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range set.Way {
		if w.Key.Addr == k.Addr && w.Key.Port == k.Port && w.Key.Proto == k.Proto && w.Value == v {
			found = true
		}
	}
	if !found {
		t.Fatalf("the service's vip_sets set %+v does not hold %+v -> %+v", set, k, v)
	}
}
