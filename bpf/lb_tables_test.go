package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
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

// Pin puts a table at a free path, and at a taken one replaces what is
// pinned there.
func TestTablePinReplaces(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := testutil.TempPinPath(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "table")
	t.Cleanup(func() { _ = os.Remove(path) })
	var l LB
	for i, ids := range [][]uint32{{1, 2, 3, 1, 2, 3, 1}, {4, 4, 4, 4, 4, 4, 4}} {
		tab, err := l.NewTable(TableOf(ids))
		if err != nil {
			t.Fatal(err)
		}
		if err := tab.Pin(path); err != nil {
			t.Fatalf("pin %d: %v", i, err)
		}
		pinned, err := LoadPinnedTable(path)
		if err != nil {
			t.Fatal(err)
		}
		if pinned.ID() != tab.ID() {
			t.Errorf("pin %d: the path holds map %d, want %d", i, pinned.ID(), tab.ID())
		}
		_ = pinned.Close()
		_ = tab.Close()
	}
}

// A TableLoader used by two goroutines loads each table with its content,
// past several batches of mappings, and Close removes the mappings left:
// none of the tables' maps stays mapped into the process.
func TestTableLoader(t *testing.T) {
	testutil.RequirePrivileged(t)
	const n = 2*unmapBatch + 37
	want := make([]MaglevTable, n)
	for i := range want {
		ids := make([]uint32, 4093+i%3*1024) // 1 to 3 pages of slots
		for s := range ids {
			ids[s] = uint32(1 + (s*7+i)%(1+i%50))
		}
		want[i] = TableOf(ids)
	}
	before := bpfMappings(t)
	var tl TableLoader
	got := make([]*Table, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < n; i += 2 {
				got[i], errs[i] = tl.NewTable(want[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if left := bpfMappings(t) - before; left != 0 {
		t.Errorf("%d more map mappings after Close than before", left)
	}
	for i, tab := range got {
		blocks := make([][maglevBlockBytes]byte, tab.m.MaxEntries())
		if err := ReadArray(tab.m, func(k uint32, v *[maglevBlockBytes]byte) { blocks[k] = *v }); err != nil {
			t.Fatal(err)
		}
		back, err := decodeTable(blocks)
		if err != nil {
			t.Fatalf("table %d: %v", i, err)
		}
		if !slices.Equal(back.Slots, want[i].Slots) || !slices.Equal(back.Backends, want[i].Backends) {
			t.Fatalf("table %d reads back different", i)
		}
		_ = tab.Close()
	}
}

// bpfMappings counts the BPF maps mapped into this process.
func bpfMappings(t *testing.T) int {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(maps), "bpf-map")
}
