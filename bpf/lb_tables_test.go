package bpf

import (
	"fmt"
	"slices"
	"testing"
)

// The C layout of a Maglev table round-trips: header, 16-bit slots (four
// to a block), backend ids (two to a block), for sizes that fill the last
// block or not.
func TestMaglevTableLayout(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []uint32
	}{
		{"7 slots, 3 backends", []uint32{5, 100_000, 5, 7, 7, 0, 5}},
		{"8 slots, 1 backend", []uint32{9, 9, 9, 9, 9, 9, 9, 9}},
		{"no backend", make([]uint32, 11)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := TableOf(tc.ids)
			if err := tab.validate(); err != nil {
				t.Fatal(err)
			}
			blocks := tab.encode()
			if uint32(len(blocks)) != tab.Blocks() {
				t.Fatalf("%d blocks, Blocks() = %d", len(blocks), tab.Blocks())
			}
			back, err := decodeTable(blocks)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back.IDs(), tc.ids) {
				t.Fatalf("decoded %v, want %v", back.IDs(), tc.ids)
			}
		})
	}
	if err := (MaglevTable{Slots: []uint16{2}, Backends: []uint32{1}}).validate(); err == nil {
		t.Fatal("a slot naming a missing backend index was accepted")
	}
}

// The inner layout of maglev is part of its name (lb_maps.h): this
// fingerprint changes with the layout, and the test says to rename the map
// then, so that a restarted aird replaces the pinned map instead of
// failing to install tables in it.
func TestMaglevLayoutVersioned(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	in := spec.Maps[MapMaglev].InnerMap
	got := fmt.Sprintf("%s %s type=%s key=%d value=%d flags=%#x", MapMaglev, in.Value.TypeName(), in.Type, in.KeySize, in.ValueSize, in.Flags)
	const want = "maglev_v2 maglev_block type=Array key=4 value=8 flags=0x1400"
	if got != want {
		t.Fatalf("maglev's inner layout is now %q (was %q): if the layout changed, give the map a new name (maglev_v3) in lb_maps.h, then update this test", got, want)
	}
}
