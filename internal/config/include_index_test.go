package config

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// TestIncludeIndexOnReload checks the reload that looks only at the
// changed files (crossIndex): a conflict the changed file brings with an
// unchanged one is still refused, with crossCheck's error, a failed load
// leaves the files as they were, a removed file frees its names and VIPs,
// and the index after reloads is the one a fresh load builds.
func TestIncludeIndexOnReload(t *testing.T) {
	aBody := svcTOML("web", 1, 80, "fd00:b::1") + svcTOML("wide", 5, 0, "fd00:b::1")
	bBody := svcTOML("api", 2, 80, "fd00:b::2", "fd00:300::20")
	cBody := svcTOML("other", 4, 80, "fd00:b::3")
	main := splitDir(t, "", map[string]string{"a.toml": aBody, "b.toml": bBody, "c.toml": cBody})
	dir := filepath.Join(filepath.Dir(main), "services.d")
	a, c := filepath.Join(dir, "a.toml"), filepath.Join(dir, "c.toml")
	l := &Loader{}
	if _, err := l.Load(main); err != nil {
		t.Fatal(err)
	}
	// one changed file, no conflict: the index is updated, not rebuilt
	idx := l.index
	writeFile(t, c, cBody+svcTOML("new", 6, 80, "fd00:b::1"))
	if _, err := l.Load(main); err != nil {
		t.Fatal(err)
	}
	if l.index != idx {
		t.Error("a reload of one file without conflicts rebuilt the index")
	}
	for _, tc := range []struct {
		name, body, key string
		line            int
		parts           []string
	}{
		{"name", cBody + svcTOML("web", 7, 80, "fd00:b::1"), "services[1].name", 9, []string{`duplicate service name "web"`, "services[0] in " + a}},
		{"vip and port", cBody + svcTOML("x", 1, 80, "fd00:b::1"), "services[1].vip", 10, []string{"already used by services[0] in " + a}},
		{"vip-wide", cBody + svcTOML("x", 5, 443, "fd00:b::1"), "services[1].port", 11, []string{"services[1] in " + a, "every tcp port"}},
		{"backend is a vip", cBody + svcTOML("x", 8, 80, "fd00:300::2"), "services[1].backends[0].address", 13, []string{"is the VIP of services[0] in " + filepath.Join(dir, "b.toml")}},
	} {
		writeFile(t, c, cBody) // each conflict against an index, not a full check
		if _, err := l.Load(main); err != nil || l.index == nil {
			t.Fatalf("%s: back to the good file: %v, index %v", tc.name, err, l.index != nil)
		}
		writeFile(t, c, tc.body)
		es := loadErrors(t, l, main)
		wantError(t, es, c, tc.line, tc.key, tc.parts...)
		if l.index != nil {
			t.Errorf("%s: a failed load kept an index", tc.name)
		}
	}
	// a VIP that is another file's backend: refused the other way round
	writeFile(t, c, cBody)
	if _, err := l.Load(main); err != nil || l.index == nil {
		t.Fatal(err)
	}
	writeFile(t, c, cBody+svcTOML("x", 0x20, 80, "fd00:b::9"))
	es := loadErrors(t, l, main)
	wantError(t, es, filepath.Join(dir, "b.toml"), 6, "services[0].backends[1].address", "is the VIP of services[1] in "+c)

	// removing a file frees its names and VIPs
	writeFile(t, c, cBody)
	if _, err := l.Load(main); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Load(main); err != nil {
		t.Fatal(err)
	}
	idx = l.index
	writeFile(t, c, cBody+svcTOML("web", 1, 80, "fd00:b::1")+svcTOML("wide", 5, 0, "fd00:b::1"))
	f, err := l.Load(main)
	if err != nil {
		t.Fatalf("the names of a removed file: %v", err)
	}
	if l.index != idx {
		t.Error("a reload of one file without conflicts rebuilt the index")
	}
	if len(f.Services) != 4 {
		t.Errorf("services %v", serviceNames(f))
	}
	fresh := &Loader{}
	if _, err := fresh.Load(main); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(l.index.names, fresh.index.names) || !maps.Equal(l.index.exact, fresh.index.exact) ||
		len(l.index.vips) != len(fresh.index.vips) || len(l.index.backends) != len(fresh.index.backends) ||
		len(l.index.vipProto) != len(fresh.index.vipProto) || len(l.index.units) != len(fresh.index.units) {
		t.Errorf("the index after reloads differs from a fresh one:\n%+v\n%+v", l.index, fresh.index)
	}
}
