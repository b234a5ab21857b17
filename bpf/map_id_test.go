package bpf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/internal/testutil"
)

// TestMapID: mapID gives the id (*ebpf.Map).Info gives, for maps of
// different types.
func TestMapID(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, spec := range []*ebpf.MapSpec{
		{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 16},
	} {
		m, err := ebpf.NewMap(spec)
		if err != nil {
			t.Fatal(err)
		}
		info, err := m.Info()
		if err != nil {
			t.Fatal(err)
		}
		want, ok := info.ID()
		got, err := mapID(m)
		if err != nil || !ok || got != want || got == 0 {
			t.Errorf("%s: mapID %d, %v; Info's id %d (%v)", spec.Type, got, err, want, ok)
		}
		m.Close()
	}
}

// TestPinnedTableID: PinnedTableID gives a pinned table's id, says a
// pinned map of another layout is not a table, and fails on a missing pin.
func TestPinnedTableID(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := testutil.TempPinPath(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec  *ebpf.MapSpec
		table bool
	}{
		{&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: maglevBlockBytes, MaxEntries: 7}, true},
		{&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 7}, false},
		{&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: maglevBlockBytes, MaxEntries: 7}, false},
	} {
		m, err := ebpf.NewMap(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "m")
		if err := m.Pin(path); err != nil {
			t.Fatal(err)
		}
		want, err := mapID(m)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := PinnedTableID(path)
		if err != nil || ok != tc.table || (ok && got != want) {
			t.Errorf("%s %d-byte values: PinnedTableID = %d, %v, %v; want %d, %v", tc.spec.Type, tc.spec.ValueSize, got, ok, err, want, tc.table)
		}
		if err := m.Unpin(); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	if _, _, err := PinnedTableID(filepath.Join(dir, "missing")); err == nil {
		t.Error("PinnedTableID of a missing pin: no error")
	}
}

// TestReadHash: ReadHash reads every entry of a hash map of more entries
// than one batch holds, each once, with its value.
func TestReadHash(t *testing.T) {
	testutil.RequirePrivileged(t)
	const n = 10000
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: n})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for k := uint32(0); k < n; k++ {
		if err := m.Put(k*7, uint64(k)*3+1); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint32]uint64{}
	err = ReadHash(m, func(k *uint32, v *uint64) {
		if _, dup := seen[*k]; dup {
			t.Errorf("key %d read twice", *k)
		}
		seen[*k] = *v
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("read %d entries, want %d", len(seen), n)
	}
	for k, v := range seen {
		if k%7 != 0 || v != uint64(k/7)*3+1 {
			t.Errorf("key %d: value %d", k, v)
		}
	}
}
