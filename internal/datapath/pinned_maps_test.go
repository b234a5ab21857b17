package datapath

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aird-net/aird/bpf"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/pinned-maps.golden from the current object")

// pinnedMapSpecs describes every map aird pins, as the pins' compatibility
// check sees it (ebpf.MapSpec.Compatible: type, key and value size, max
// entries, flags; and the inner map of a map-in-map), at the default sizes.
func pinnedMapSpecs(t *testing.T) string {
	t.Helper()
	spec, err := bpf.LoadSpecWith(Options{}.bpfConfig())
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for name, m := range spec.Maps {
		if isInternalMap(name) {
			continue
		}
		line := fmt.Sprintf("%s %s key=%d value=%d max=%d flags=%#x", name, m.Type, m.KeySize, m.ValueSize, m.MaxEntries, m.Flags)
		if in := m.InnerMap; in != nil {
			line += fmt.Sprintf(" inner=(%s key=%d value=%d max=%d flags=%#x)", in.Type, in.KeySize, in.ValueSize, in.MaxEntries, in.Flags)
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// stateMaps hold what aird cannot rebuild: conntrack has every
// established flow's backend. Every other pinned map is rewritten from the
// configuration and the endpoint store at start, or counts (and starts
// again from zero when replaced).
var stateMaps = map[string]bool{"conntrack": true, "conntrack_v2": true}

// TestPinnedMapSpecs pins the layout of every pinned map. A running aird's
// pinned maps are adopted by the next version only while compatible; a
// change of type, key, value, size or flags makes the upgrade replace the
// map, with what it held. For a map aird rebuilds that costs nothing but
// the counters; for a state map (stateMaps) it breaks every established
// flow, so such a change must bring a migration that carries the old map's
// content over (internal/datapath, exercised by TestRackUpgrade in
// integration/lab). Either way the new layout is recorded on purpose:
//
//	go test ./internal/datapath -run TestPinnedMapSpecs -update
func TestPinnedMapSpecs(t *testing.T) {
	got := pinnedMapSpecs(t)
	golden := filepath.Join("testdata", "pinned-maps.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	want := string(b)
	if got == want {
		return
	}
	diff := diffLines(want, got)
	var state []string
	for _, l := range strings.Split(diff, "\n") {
		if f := strings.Fields(l); len(f) > 1 && stateMaps[f[1]] {
			state = append(state, f[1])
		}
	}
	if len(state) > 0 {
		t.Fatalf("the layout of state map(s) %v changed: an upgrade would replace them and break every established flow.\n"+
			"Bring a migration that carries their content over, then record the layout with\n"+
			"  go test ./internal/datapath -run TestPinnedMapSpecs -update\n%s", state, diff)
	}
	t.Fatalf("the pinned maps' layout changed: an upgrade replaces these maps (aird rebuilds them; their counters restart).\n"+
		"Record the layout with\n  go test ./internal/datapath -run TestPinnedMapSpecs -update\n%s", diff)
}

// diffLines lists the lines only in want (-) and only in got (+).
func diffLines(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			if l != "" {
				m[l] = true
			}
		}
		return m
	}
	w, g := in(want), in(got)
	var out []string
	for l := range w {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range g {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return strings.Join(out, "\n")
}
