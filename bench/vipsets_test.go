package bench

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/aird-net/aird/bpf"
	"github.com/cilium/ebpf"
)

// vipSetsV1 is the set table of objects built before aff861b, whose sets
// vipSetIndexV1 picks (lb_maps.h versions the hash in the map's name).
const vipSetsV1 = "vip_sets"

// vipSetIndexV1 is those objects' vip_set_index: one multiplication, the
// address folded into its high half.
func vipSetIndexV1(k bpf.DatapathVipKey) uint32 {
	x := binary.LittleEndian.Uint64(k.Addr[0:8]) ^ binary.LittleEndian.Uint64(k.Addr[8:16])
	c := uint64(k.Port) | uint64(k.Proto)<<16
	x = (x^x>>32)<<32 | c
	return uint32(x * 0x9e3779b97f4a7c15 >> 40)
}

// adoptOlderSets gives maps an older object's set table and its hash,
// so that bpf.LB keeps that table a copy of vips as the object reads it.
func adoptOlderSets(coll *ebpf.Collection, maps *bpf.LBMaps) {
	if maps.VipSets != nil {
		return
	}
	if m := coll.Maps[vipSetsV1]; m != nil {
		maps.VipSets, maps.VipSetIndex = m, vipSetIndexV1
	}
}

// serviceInSet reports whether the data path finds the service (addr,
// proto, port) in a way of its set, without a lookup in vips: where the
// measured service sits.
func serviceInSet(maps bpf.LBMaps, addr netip.Addr, proto uint8, port uint16) (bool, error) {
	if maps.VipSets == nil {
		return false, nil
	}
	index := maps.VipSetIndex
	if index == nil {
		index = bpf.VIPSetIndex
	}
	k := bpf.VIPKey(addr, proto, port)
	var set bpf.DatapathVipSet
	if err := maps.VipSets.Lookup(index(k)&(maps.VipSets.MaxEntries()-1), &set); err != nil {
		return false, fmt.Errorf("read the set table: %w", err)
	}
	if set.Seq&1 != 0 {
		return false, nil
	}
	for _, w := range set.Way {
		wk := w.Key
		wk.Pad = 0
		if w.Key.Pad == uint8(bpf.DatapathVipSetLayoutVIP_WAY_USED) && wk == k {
			return true, nil
		}
	}
	return false, nil
}

// olderBackendMaps prepares the spec of an object built before
// backend_cpu, whose next-hop cache and backend counters are maps of
// their own (nexthops, backend_stats: the object's sizes are the default
// id space's, which the benchmarks use): it gets an unused backend_cpu, so
// that bpf.Configure and bpf.LB, which know this tree's layout, work on it.
func olderBackendMaps(spec *ebpf.CollectionSpec) {
	if spec.Maps[bpf.DatapathMapBackendCpu] != nil || spec.Maps["nexthops"] == nil {
		return
	}
	spec.Maps[bpf.DatapathMapBackendCpu] = &ebpf.MapSpec{Name: bpf.DatapathMapBackendCpu, Type: ebpf.PerCPUArray,
		KeySize: 4, ValueSize: uint32(binary.Size(bpf.DatapathBackendCpuState{})), MaxEntries: 1}
}
