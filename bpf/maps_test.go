package bpf

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestEveryMapHasOneOwner: every map of the object belongs to exactly one
// map set (PipelineMaps, LBMaps), so each has one writer; every program
// is in Programs. NewObjects enforces the same at load time.
func TestEveryMapHasOneOwner(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string][]string{}
	for _, set := range []any{PipelineMaps{}, LBMaps{}, RouterMaps{}, Programs{}} {
		typ := reflect.TypeOf(set)
		for i := range typ.NumField() {
			name := typ.Field(i).Tag.Get("ebpf")
			if name == "" {
				continue // not a map or program (LBMaps.VipSetIndex)
			}
			owners[name] = append(owners[name], typ.Name())
		}
	}
	for name := range spec.Maps {
		if strings.HasPrefix(name, ".") {
			continue
		}
		if len(owners[name]) != 1 {
			t.Errorf("map %s has owners %v, want exactly one", name, owners[name])
		}
		delete(owners, name)
	}
	for name := range spec.Programs {
		if !slices.Equal(owners[name], []string{"Programs"}) {
			t.Errorf("program %s is in %v, want Programs", name, owners[name])
		}
		delete(owners, name)
	}
	for name, sets := range owners {
		t.Errorf("%v names %s, which the object does not have", sets, name)
	}
}
