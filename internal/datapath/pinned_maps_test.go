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

// TestPinnedMapSpecs pins the layout of every pinned map. A running aird's
// pinned maps are adopted by the next version only while compatible; a
// change of type, key, value, size or flags makes the upgrade replace the
// map, and lose what it held (conntrack: every established flow's backend;
// the router's and LB's tables are rewritten from configuration, counters
// start again). So such a change fails here until it brings a migration
// that carries the old map's content over (internal/datapath, exercised by
// the upgrade test of integration/lab), and then records the new layout:
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
	if want := string(b); got != want {
		t.Fatalf("the pinned maps' layout changed: the next upgrade replaces the changed maps and loses their state.\n"+
			"Bring a migration for them (see the test's comment), then run\n"+
			"  go test ./internal/datapath -run TestPinnedMapSpecs -update\n%s", diffLines(want, got))
	}
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
