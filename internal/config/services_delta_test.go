package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// applyDelta rebuilds the new services' names from the old ones and the
// delta: what a consumer of the delta does.
func applyDelta(t *testing.T, old, next *File, d ServicesDelta) {
	t.Helper()
	got := make([]string, len(next.Services))
	covered := make([]int, len(next.Services))
	for _, r := range d.Kept {
		for k := range r.Len {
			got[r.NewAt+k] = old.Services[r.OldAt+k].Name
			covered[r.NewAt+k]++
			if !sameService(&old.Services[r.OldAt+k], &next.Services[r.NewAt+k]) {
				t.Errorf("kept %s differs", next.Services[r.NewAt+k].Name)
			}
		}
	}
	for _, i := range d.Changed {
		got[i] = next.Services[i].Name
		covered[i]++
	}
	for i, n := range covered {
		if n != 1 {
			t.Errorf("new position %d covered %d times", i, n)
		}
	}
	if want := serviceNames(next); !slices.Equal(got, want) {
		t.Errorf("rebuilt %v, want %v", got, want)
	}
	names := map[string]bool{}
	for _, s := range next.Services {
		names[s.Name] = true
	}
	for _, i := range d.Removed {
		if names[old.Services[i].Name] {
			t.Errorf("removed %s is still configured", old.Services[i].Name)
		}
	}
}

// TestDiffServices checks the services delta of reloads through a Loader:
// nothing changed, one service changed in one file, one added, one removed,
// one moved to another file unchanged, a file removed, a pool VIP filled
// in differently, and a File made without the Loader.
func TestDiffServices(t *testing.T) {
	files := map[string]string{}
	for i := range 4 {
		files[fmt.Sprintf("%02d.toml", i)] = svcTOML(fmt.Sprintf("a%d", i), 2*i+1, 80, "fd00:b::1") +
			svcTOML(fmt.Sprintf("b%d", i), 2*i+2, 80, "fd00:b::2")
	}
	main := splitDir(t, "", files)
	dir := filepath.Join(filepath.Dir(main), "services.d")
	l := &Loader{trustAge: time.Hour}
	cur, err := l.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	step := func(name string, change func(), changed, removed []string) {
		t.Helper()
		change()
		next, err := l.Load(main)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d := DiffServices(cur, next)
		var gotC, gotR []string
		if len(d.Was) != len(d.Changed) {
			t.Fatalf("%s: %d Was for %d Changed", name, len(d.Was), len(d.Changed))
		}
		for k, i := range d.Changed {
			gotC = append(gotC, next.Services[i].Name)
			if w := d.Was[k]; w >= 0 && cur.Services[w].Name != next.Services[i].Name {
				t.Errorf("%s: %s was %s", name, next.Services[i].Name, cur.Services[w].Name)
			}
		}
		for _, i := range d.Removed {
			gotR = append(gotR, cur.Services[i].Name)
		}
		if !slices.Equal(gotC, changed) || !slices.Equal(gotR, removed) {
			t.Errorf("%s: changed %v removed %v, want %v %v", name, gotC, gotR, changed, removed)
		}
		applyDelta(t, cur, next, d)
		sections, _ := DiffFiles(cur, next)
		if has := slices.Contains(sections, SectionServices); has == d.Empty() {
			t.Errorf("%s: sections %v for a delta empty=%v", name, sections, d.Empty())
		}
		cur = next
	}
	f := func(n int) string { return filepath.Join(dir, fmt.Sprintf("%02d.toml", n)) }
	step("nothing", func() {}, nil, nil)
	step("one port", func() {
		writeFile(t, f(1), svcTOML("a1", 3, 81, "fd00:b::1")+svcTOML("b1", 4, 80, "fd00:b::2"))
	}, []string{"a1"}, nil)
	step("one added", func() {
		writeFile(t, f(2), files["02.toml"]+svcTOML("c2", 20, 80, "fd00:b::3"))
	}, []string{"c2"}, nil)
	step("one removed", func() { writeFile(t, f(2), files["02.toml"]) }, nil, []string{"c2"})
	step("moved unchanged", func() {
		writeFile(t, f(0), svcTOML("a0", 1, 80, "fd00:b::1"))
		writeFile(t, f(3), files["03.toml"]+svcTOML("b0", 2, 80, "fd00:b::2"))
	}, nil, nil)
	step("file removed", func() {
		if err := os.Remove(f(2)); err != nil {
			t.Fatal(err)
		}
	}, nil, []string{"a2", "b2"})
	// A VIP the daemon filled in differs: the kept file counts as changed.
	next, err := l.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	next.Services[0].VIP = next.Services[1].VIP
	if d := DiffServices(cur, next); !slices.Equal(d.Changed, []int{0}) || len(d.Removed) != 0 {
		t.Errorf("a VIP filled in differently: %+v", d)
	}
	// Files made without the Loader: compared service by service.
	a, b := &File{Path: "x", Config: cur.Config}, &File{Path: "x", Config: &Config{Services: slices.Clone(cur.Services)}}
	b.Services[2].Backends = append(slices.Clone(b.Services[2].Backends), Backend{Address: b.Services[2].Backends[0].Address.Next(), Weight: 1})
	if d := DiffServices(a, b); !slices.Equal(d.Changed, []int{2}) || len(d.Removed) != 0 {
		t.Errorf("without spans: %+v", d)
	}
}
