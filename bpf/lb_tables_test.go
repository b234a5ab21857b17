package bpf

import (
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
