package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// includeMain is a main file of a split configuration: node, a service
// pool, and the services in services.d.
const includeMain = `include = ["services.d/*.toml"]

[node]
name = "t"
underlay = ["fd00:100:1::1"]

[[ipam.pools]]
name = "services"
kind = "service"
prefixes = ["fd00:300::/112"]
`

const minimalNode = "[node]\nname = \"t\"\nunderlay = [\"fd00:100:1::1\"]\n"

// svcTOML is one service of an included file: VIP fd00:300::<n>.
func svcTOML(name string, n, port int, backends ...string) string {
	return fmt.Sprintf("[[services]]\nname = %q\nvip = \"fd00:300::%x\"\nport = %d\nhealth-check = { type = \"none\" }\nbackends = [%s]\n\n",
		name, n, port, `"`+strings.Join(backends, `", "`)+`"`)
}

// splitDir writes includeMain (with extra appended) and the given
// services.d files, and returns the main file's path.
func splitDir(t *testing.T, extra string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "services.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		writeFile(t, filepath.Join(dir, "services.d", name), body)
	}
	main := filepath.Join(dir, "aird.toml")
	writeFile(t, main, includeMain+extra)
	return main
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func serviceNames(f *File) []string {
	var out []string
	for _, s := range f.Services {
		out = append(out, s.Name)
	}
	return out
}

// loadErrors loads path and returns its errors, failing when it loads.
func loadErrors(t *testing.T, l *Loader, path string) Errors {
	t.Helper()
	f, err := l.Load(path)
	if err == nil {
		t.Fatalf("loaded %v; want an error", serviceNames(f))
	}
	var es Errors
	if !asErrors(err, &es) {
		t.Fatalf("error %v is not a config.Errors", err)
	}
	return es
}

// wantError checks that one of es is in file at line with key, and its
// message holds every part.
func wantError(t *testing.T, es Errors, file string, line int, key string, parts ...string) {
	t.Helper()
	for _, e := range es {
		if e.File == file && e.Line == line && e.Key == key && containsAll(e.Msg, parts) {
			return
		}
	}
	t.Fatalf("no error at %s:%d %s with %q; got:\n%v", file, line, key, parts, es)
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func TestIncludeMergesInOrder(t *testing.T) {
	main := splitDir(t, svcTOML("main", 9, 80, "fd00:b::9"), map[string]string{
		"b.toml":     svcTOML("b1", 3, 80, "fd00:b::1") + svcTOML("b2", 4, 80, "fd00:b::2"),
		"a.toml":     svcTOML("a1", 1, 80, "fd00:b::1"),
		"c.txt":      "not matched",
		"empty.toml": "# no services yet\n",
	})
	f, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(serviceNames(f), ","), "main,a1,b1,b2"; got != want {
		t.Fatalf("services %s, want %s", got, want)
	}
	if len(f.Sources) != 3 || filepath.Base(f.Sources[0].Path) != "a.toml" || filepath.Base(f.Sources[2].Path) != "empty.toml" {
		t.Fatalf("sources %+v", f.Sources)
	}
	if hc := f.Services[1].HealthCheck; hc.Port != 80 || hc.Interval.D() != 5*time.Second || f.Services[1].Backends[0].Weight != 100 {
		t.Fatalf("included service without its defaults: %+v", f.Services[1])
	}
	// The digest covers the included files.
	d := f.Digest
	writeFile(t, filepath.Join(filepath.Dir(main), "services.d", "a.toml"), svcTOML("a1", 1, 81, "fd00:b::1"))
	if f2, err := Load(main); err != nil || f2.Digest == d {
		t.Fatalf("digest after a change of an included file: %v, same=%v", err, err == nil && f2.Digest == d)
	}
}

// TestIncludeReloadKeepsUnchangedFiles checks that a Loader parses again
// only the files whose content changed: the services of the others are the
// very values of the last load (their backend slices are shared), whether
// the file's stat is trusted or its content is hashed again.
func TestIncludeReloadKeepsUnchangedFiles(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted-stat=%v", trust), func(t *testing.T) {
			files := map[string]string{}
			for i := range 5 {
				files[fmt.Sprintf("%02d.toml", i)] = svcTOML(fmt.Sprintf("s%d", i), i+1, 80, "fd00:b::1", "fd00:b::2")
			}
			main := splitDir(t, "", files)
			l := &Loader{trustAge: time.Hour}
			if trust {
				l.trustAge = -time.Hour
			}
			f1, err := l.Load(main)
			if err != nil {
				t.Fatal(err)
			}
			changed := filepath.Join(filepath.Dir(main), "services.d", "02.toml")
			writeFile(t, changed, svcTOML("s2", 3, 80, "fd00:b::1", "fd00:b::2", "fd00:b::3"))
			if trust { // a new mtime, as any write a second later would have
				later := time.Now().Add(time.Minute)
				if err := os.Chtimes(changed, later, later); err != nil {
					t.Fatal(err)
				}
			}
			f2, err := l.Load(main)
			if err != nil {
				t.Fatal(err)
			}
			if want := f2.Parsed - int64(len(includeMain)); want != int64(len(svcTOML("s2", 3, 80, "fd00:b::1", "fd00:b::2", "fd00:b::3"))) {
				t.Errorf("the reload parsed %d bytes of included files, want the changed file's", want)
			}
			for i := range 5 {
				same := &f1.Services[i].Backends[0] == &f2.Services[i].Backends[0]
				if same != (i != 2) {
					t.Errorf("service %d: backends shared with the last load = %v", i, same)
				}
			}
			if n := len(f2.Services[2].Backends); n != 3 {
				t.Errorf("changed service has %d backends, want 3", n)
			}
			if len(f1.Services[2].Backends) != 2 {
				t.Error("the first load's configuration changed")
			}
		})
	}
}

// TestIncludeBadFileOnReload checks that a reload with one bad file fails
// naming its file:line and key, returns nothing else, and leaves the
// Loader as it was: the next good load keeps the unchanged files.
func TestIncludeBadFileOnReload(t *testing.T) {
	main := splitDir(t, "", map[string]string{
		"a.toml": svcTOML("a", 1, 80, "fd00:b::1"),
		"b.toml": svcTOML("b", 2, 80, "fd00:b::1"),
	})
	b := filepath.Join(filepath.Dir(main), "services.d", "b.toml")
	l := &Loader{}
	f1, err := l.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, b, svcTOML("b", 2, 80, "fd00:b::1")+"[[services]]\nname = \"c\"\nvip = \"fd00:300::3\"\nport = 70000\nbackends = [\"fd00:b::1\"]\n")
	es := loadErrors(t, l, main)
	wantError(t, es, b, 11, "services[1].port", "out of range")
	writeFile(t, b, "[[services]\nname = 1\n")
	es = loadErrors(t, l, main)
	wantError(t, es, b, 1, "", "syntax error")
	writeFile(t, b, svcTOML("b", 2, 80, "fd00:b::1"))
	f3, err := l.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if &f1.Services[0].Backends[0] != &f3.Services[0].Backends[0] {
		t.Error("the unchanged file was parsed again after a failed load")
	}
	if f1.Digest != f3.Digest {
		t.Error("the same files give another digest")
	}
}

// TestIncludeAcrossFiles checks the errors that span files: each names the
// file:line and key of the later service and the earlier one's file.
func TestIncludeAcrossFiles(t *testing.T) {
	main := splitDir(t, "\n[bgp]\nasn = 65001\nrouter-id = \"192.0.2.1\"\n[[bgp.peers]]\naddress = \"fd00:300::5\"\nasn = 65000\n\n"+
		svcTOML("m", 9, 80, "fd00:b::9"), map[string]string{
		"a.toml": svcTOML("web", 1, 80, "fd00:b::1") + svcTOML("wide", 2, 0, "fd00:b::1") + svcTOML("peer", 5, 80, "fd00:b::1"),
		"b.toml": svcTOML("web", 3, 80, "fd00:b::1") + // the name again
			svcTOML("x", 1, 80, "fd00:b::2") + // a.toml's VIP and port
			svcTOML("y", 2, 443, "fd00:b::2") + // a.toml's VIP-wide service has every port
			svcTOML("z", 4, 80, "fd00:300::9"), // main's VIP as a backend
	})
	dir := filepath.Dir(main)
	a, b := filepath.Join(dir, "services.d", "a.toml"), filepath.Join(dir, "services.d", "b.toml")
	es := loadErrors(t, &Loader{}, main)
	wantError(t, es, b, 2, "services[0].name", `duplicate service name "web"`, "services[0] in "+a)
	wantError(t, es, b, 10, "services[1].vip", "already used by services[0] in "+a)
	wantError(t, es, b, 18, "services[2].port", "services[1] in "+a, "every tcp port")
	wantError(t, es, b, 27, "services[3].backends[0].address", "is the VIP of services[0] in "+main)
	wantError(t, es, main, 16, "bgp.peers[0].address", "is the VIP of services[2] in "+a)
	if len(es) != 5 {
		t.Errorf("%d errors, want 5:\n%v", len(es), es)
	}
}

func TestIncludeLimitsAcrossFiles(t *testing.T) {
	main := splitDir(t, "\n[lb]\nmax-vips = 2\nmax-backends = 2\n", map[string]string{
		"a.toml": svcTOML("a", 1, 80, "fd00:b::1", "fd00:b::2"),
		"b.toml": svcTOML("b", 2, 80, "fd00:b::2", "fd00:b::3") + svcTOML("c", 3, 80, "fd00:b::3"),
	})
	b := filepath.Join(filepath.Dir(main), "services.d", "b.toml")
	es := loadErrors(t, &Loader{}, main)
	wantError(t, es, b, 8, "services[1]", "3 services in all files exceed lb.max-vips = 2")
	wantError(t, es, b, 6, "services[0].backends[1].address", "fd00:b::3 is distinct backend address number 3", "lb.max-backends = 2")
}

// TestIncludeFileContents checks what an included file may hold and how
// the include key itself is checked.
func TestIncludeFileContents(t *testing.T) {
	t.Run("other keys", func(t *testing.T) {
		main := splitDir(t, "", map[string]string{"a.toml": svcTOML("a", 1, 80, "fd00:b::1") + "[lb]\nmax-vips = 3\n"})
		es := loadErrors(t, &Loader{}, main)
		wantError(t, es, filepath.Join(filepath.Dir(main), "services.d", "a.toml"), 8, "lb", `unknown key "lb" (valid keys here: services)`)
	})
	t.Run("nested include", func(t *testing.T) {
		main := splitDir(t, "", map[string]string{"a.toml": "include = [\"x.toml\"]\n"})
		es := loadErrors(t, &Loader{}, main)
		wantError(t, es, filepath.Join(filepath.Dir(main), "services.d", "a.toml"), 1, "include", `unknown key "include"`)
	})
	t.Run("missing file", func(t *testing.T) {
		main := filepath.Join(t.TempDir(), "aird.toml")
		writeFile(t, main, "include = [\"services.d/*.toml\", \"extra.toml\"]\n"+minimalNode)
		es := loadErrors(t, &Loader{}, main)
		wantError(t, es, main, 1, "include[1]", "extra.toml", "no such file")
	})
	t.Run("bad pattern", func(t *testing.T) {
		main := filepath.Join(t.TempDir(), "aird.toml")
		writeFile(t, main, "\ninclude = [\"\", \"a[\"]\n"+minimalNode)
		es := loadErrors(t, &Loader{}, main)
		wantError(t, es, main, 2, "include[0]", "empty pattern")
		wantError(t, es, main, 2, "include[1]", "invalid glob")
	})
	t.Run("itself", func(t *testing.T) {
		main := filepath.Join(t.TempDir(), "aird.toml")
		writeFile(t, main, "include = [\"*.toml\"]\n"+minimalNode)
		es := loadErrors(t, &Loader{}, main)
		wantError(t, es, main, 1, "include[0]", "matches this file itself")
	})
	t.Run("directory", func(t *testing.T) {
		main := splitDir(t, "", nil)
		if err := os.Mkdir(filepath.Join(filepath.Dir(main), "services.d", "d.toml"), 0o755); err != nil {
			t.Fatal(err)
		}
		es := loadErrors(t, &Loader{}, main)
		wantError(t, es, filepath.Join(filepath.Dir(main), "services.d", "d.toml"), 0, "", "a directory, not a regular file")
	})
}

// TestIncludeBounds tries each limit of the include key: patterns, files
// and their total size.
func TestIncludeBounds(t *testing.T) {
	t.Run("patterns", func(t *testing.T) {
		main := filepath.Join(t.TempDir(), "aird.toml")
		pats := strings.Repeat(`"x/*.toml", `, MaxIncludePatterns+1)
		writeFile(t, main, "include = ["+pats+"]\n")
		es := loadErrors(t, &Loader{}, main)
		wantError(t, es, main, 1, fmt.Sprintf("include[%d]", MaxIncludePatterns), "include holds at most 64")
	})
	t.Run("files", func(t *testing.T) {
		files := map[string]string{}
		for i := range MaxIncludeFiles + 1 {
			files[fmt.Sprintf("%05d.toml", i)] = ""
		}
		main := splitDir(t, "", files)
		es := loadErrors(t, &Loader{}, main)
		wantError(t, es, main, 1, "include[0]", "match more than 4096 files")
	})
	t.Run("bytes", func(t *testing.T) {
		// Sparse files: the sizes count, and nothing is read.
		main := splitDir(t, "", nil)
		var last string
		for i := range MaxIncludeBytes/MaxFileSize + 1 {
			last = filepath.Join(filepath.Dir(main), "services.d", fmt.Sprintf("%02d.toml", i))
			writeFile(t, last, "")
			if err := os.Truncate(last, MaxFileSize); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		es := loadErrors(t, &Loader{}, main)
		wantError(t, es, last, 0, "", "may hold at most 268435456")
		if d := time.Since(start); d > 10*time.Second {
			t.Logf("took %s", d) // not an assertion: a sign that the files were read
		}
	})
}
