package bpf

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/internal/testutil"
)

// SumCounters adds up every CPU's slot of the entries asked for; the map
// layout is the one the object declares for vip_stats.
func TestSumCounters(t *testing.T) {
	testutil.RequirePrivileged(t)
	spec, err := LoadDatapath()
	if err != nil {
		t.Fatal(err)
	}
	ms := spec.Maps[DatapathMapVipStats].Copy()
	ms.MaxEntries = 8
	m, err := ebpf.NewMap(ms)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	per := make([]DatapathCounter, cpus)
	var want DatapathCounter
	for i := range per {
		per[i] = DatapathCounter{Packets: uint64(i + 1), Bytes: uint64(100 * (i + 1))}
		want.Packets += per[i].Packets
		want.Bytes += per[i].Bytes
	}
	if err := m.Put(uint32(3), per); err != nil {
		t.Fatal(err)
	}
	got, err := SumCounters(m, []uint32{3, 5, 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[3] != want || got[5] != (DatapathCounter{}) {
		t.Fatalf("SumCounters = %+v, want {3: %+v, 5: zero}", got, want)
	}
	if _, err := SumCounters(m, []uint32{8}); err == nil {
		t.Error("a key beyond max entries was read")
	}

	arr, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Close()
	if _, err := SumCounters(arr, []uint32{0}); err == nil {
		t.Error("a map that is not per-CPU was read as counters")
	}
}
