package bpf

import "testing"

// TestVIPSetsSizing: vip_sets has about one set per two vips entries, a
// power of two, for every vips size Configure can choose; the hash gives
// 24 bits, enough for the largest (lb.max-vips at MaxIDs); the map and
// vip_set_mask agree.
func TestVIPSetsSizing(t *testing.T) {
	for _, c := range []struct{ entries, sets uint32 }{
		{1, 1}, {2, 1}, {3, 2}, {192, 128}, {VIPEntriesPerID * DefaultMaxVIPs, 131072}, {VIPEntriesPerID * MaxIDs, 1 << 21},
	} {
		if got := VIPSets(c.entries); got != c.sets {
			t.Errorf("VIPSets(%d) = %d, want %d", c.entries, got, c.sets)
		}
	}
	if VIPSets(VIPEntriesPerID*MaxIDs) > 1<<24 {
		t.Fatal("the largest vip_sets has more sets than vip_set_index has bits")
	}
	for _, max := range []uint32{1, 64, DefaultMaxVIPs, MaxIDs} {
		spec, err := LoadSpecWith(Config{MaxVIPs: max})
		if err != nil {
			t.Fatal(err)
		}
		var mask uint32
		if err := spec.Variables[DatapathVarVipSetMask].Get(&mask); err != nil {
			t.Fatal(err)
		}
		n := spec.Maps[DatapathMapVipSets].MaxEntries
		if n != VIPSets(VIPEntriesPerID*max) || mask != n-1 {
			t.Errorf("max-vips %d: vip_sets %d sets, vip_set_mask %#x; want %d sets and mask %#x", max, n, mask, VIPSets(VIPEntriesPerID*max), VIPSets(VIPEntriesPerID*max)-1)
		}
	}
}
