package bpf

import (
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
