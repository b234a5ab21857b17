package bpf

import (
	"net/netip"
	"testing"
)

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
		n := spec.Maps[DatapathMapVipSetsV2].MaxEntries
		if n != VIPSets(VIPEntriesPerID*max) || mask != n-1 {
			t.Errorf("max-vips %d: vip_sets %d sets, vip_set_mask %#x; want %d sets and mask %#x", max, n, mask, VIPSets(VIPEntriesPerID*max), VIPSets(VIPEntriesPerID*max)-1)
		}
	}
}

// TestVIPSetSpread: the way operators number VIPs - consecutive addresses
// of one prefix (IPv6 and IPv4), one VIP per /64, many ports of one VIP -
// spreads over vip_sets_v2 at the default size (lb.max-vips 65,536) with
// no set holding more keys than it has ways: 10,000 VIPs with their
// service, address and fragments-only entries, every key found in its set
// by the data path without a vips lookup. (vip_sets' version 1 hash put
// 1,000 VIPs of a /112 into 24 sets of 128 keys.)
func TestVIPSetSpread(t *testing.T) {
	const n = 10000
	mask := VIPSets(VIPEntriesPerID*DefaultMaxVIPs) - 1
	layouts := map[string]func(i int) []DatapathVipKey{
		"IPv6, one /112": func(i int) []DatapathVipKey {
			a := netip.AddrFrom16([16]byte{0xfd, 0, 3, 0, 14: byte(i >> 8), 15: byte(i)})
			return []DatapathVipKey{VIPKey(a, 17, 53), VIPKey(a, 0, 0), VIPKey(a, 17, 0)}
		},
		"IPv4, one /16": func(i int) []DatapathVipKey {
			a := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
			return []DatapathVipKey{VIPKey(a, 6, 443), VIPKey(a, 0, 0), VIPKey(a, 6, 0)}
		},
		"IPv6, ::i in the i-th /64": func(i int) []DatapathVipKey {
			a := netip.AddrFrom16([16]byte{0xfd, 0, 3, 0, 6: byte(i >> 8), 7: byte(i), 14: byte(i >> 8), 15: byte(i)})
			return []DatapathVipKey{VIPKey(a, 6, 80), VIPKey(a, 0, 0)}
		},
		"one VIP, many ports": func(i int) []DatapathVipKey {
			return []DatapathVipKey{VIPKey(netip.MustParseAddr("fd00:300::1"), 6, uint16(1024+i))}
		},
	}
	for name, keys := range layouts {
		per := map[uint32]int{}
		most := 0
		for i := 1; i <= n; i++ {
			for _, k := range keys(i) {
				idx := VIPSetIndex(k) & mask
				per[idx]++
				most = max(most, per[idx])
			}
		}
		if most > vipWays {
			t.Errorf("%s: %d VIPs fill a set with %d keys (%d ways): the excess is looked up in vips", name, n, most, vipWays)
		}
	}
}
