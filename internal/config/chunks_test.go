package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// chunkHead is the text of the test files that is not services.
const chunkHead = "[node]\nname = \"n\"\nunderlay = [\"fd00:100:1::1\"]\n\n[lb]\nmax-vips = 4096\n\n[[ipam.pools]]\nname = \"services\"\nkind = \"service\"\nprefixes = [\"fd00:300::/64\"]\n\n"

// chunkSvc is service i as the tests below write it.
func chunkSvc(i int) string {
	return fmt.Sprintf("[[services]]\nname = \"s%d\"\nvip = \"fd00:300::%x\"\nport = 80\nbackends = [\"fd00:100::%x\", \"fd00:100::%x\"]\n\n",
		i, i+1, i%50+1, i%50+2)
}

// chunkText is chunkHead and the services of ids, in order.
func chunkText(ids []int) string {
	var b strings.Builder
	b.WriteString(chunkHead)
	for _, i := range ids {
		b.WriteString(chunkSvc(i))
	}
	return b.String()
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// chunkLoader is a Loader that keeps files of any size in chunks of
// about 8 services.
func chunkLoader() *Loader { return &Loader{chunkSize: 1, chunkEvery: 8} }

// loadAsParse writes text to path, loads it through l and checks the
// outcome against Parse of the same text: the same configuration, or the
// same errors. It returns the File (nil on an error) and the errors.
func loadAsParse(t *testing.T, l *Loader, path, text string) (*File, Errors) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	want, werr := Parse(path, []byte(text))
	f, err := l.Load(path)
	if (err == nil) != (werr == nil) {
		t.Fatalf("Load: %v; Parse: %v", err, werr)
	}
	if err != nil {
		var got, exp Errors
		if !asErrors(err, &got) || !asErrors(werr, &exp) {
			t.Fatalf("errors %v, %v are not config.Errors", err, werr)
		}
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("Load says\n%v\nParse says\n%v", got, exp)
		}
		return nil, got
	}
	if !reflect.DeepEqual(f.Config, want) {
		t.Fatalf("Load and Parse differ: %v; services %v and %v", Diff(f.Config, want), serviceNames(f), names(want.Services))
	}
	// What the Loader keeps of the file's scan, rescanned in part or
	// not, is what a scan of the whole file finds.
	if c := l.chunks; c != nil {
		s := scanShape(stripBOM([]byte(text)))
		if !slices.Equal(c.shape.headers, s.headers) || c.shape.items != s.items || c.shape.scalars != s.scalars {
			t.Fatalf("kept %d headers, %d items, %d scalars; the file has %d, %d, %d",
				len(c.shape.headers), c.shape.items, c.shape.scalars, len(s.headers), s.items, s.scalars)
		}
		for _, e := range c.elems { // each kept sum, reused or not, is its text's
			if c.sum(c.shape.data[e.start:e.end]) != e.sum {
				t.Fatalf("the element at %d..%d kept a sum that is not its text's", e.start, e.end)
			}
		}
	}
	return f, nil
}

func names(svcs []Service) []string {
	out := make([]string, len(svcs))
	for i := range svcs {
		out[i] = svcs[i].Name
	}
	return out
}

// A reload of a large file parses only the chunks that changed, and
// gives what a load of the whole file gives: a changed service, an
// inserted one, a removed one, an edited comment; a change outside the
// services loads the file whole.
//
// Chunk ends depend on the Loader's random seeds: with 8 to 128 services a
// chunk (chunkLoader), an edit that reparses two long chunks of a file of
// 300 services passed a quarter of it in about one run in fifty, and the
// load went whole. 1,200 services keep a quarter out of reach.
func TestChunksReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aird.toml")
	l := chunkLoader()
	ids := seq(1200)
	text := chunkText(ids)
	prev, es := loadAsParse(t, l, path, text)
	if es != nil {
		t.Fatal(es)
	}
	if prev.Parsed != int64(len(text)) || l.chunks == nil {
		t.Fatalf("first load parsed %d of %d bytes, chunks kept: %v", prev.Parsed, len(text), l.chunks != nil)
	}
	l.Prepare()
	for _, tc := range []struct {
		name    string
		edit    func(string) string
		chunked bool
		changed []string // the services the delta names as changed or new
		removed []string // as removed
	}{
		{"a changed port", func(s string) string {
			return strings.Replace(s, "name = \"s10\"\nvip = \"fd00:300::b\"\nport = 80", "name = \"s10\"\nvip = \"fd00:300::b\"\nport = 81", 1)
		}, true, []string{"s10"}, nil},
		{"an inserted service", func(s string) string {
			return strings.Replace(s, chunkSvc(150), chunkSvc(150)+chunkSvc(5000), 1)
		}, true, []string{"s5000"}, nil},
		{"a removed service", func(s string) string { return strings.Replace(s, chunkSvc(200), "", 1) }, true, nil, []string{"s200"}},
		{"a comment", func(s string) string {
			return strings.Replace(s, "name = \"s250\"\n", "name = \"s250\" # the 250th\n", 1)
		}, true, nil, nil},
		{"CRLF in one service", func(s string) string {
			return strings.Replace(s, chunkSvc(40), strings.ReplaceAll(chunkSvc(40), "\n", "\r\n"), 1)
		}, true, nil, nil},
		{"a sub-table", func(s string) string {
			return strings.Replace(s, chunkSvc(60), chunkSvc(60)+"[services.health-check]\ntype = \"tcp\"\ninterval = \"7s\"\n\n", 1)
		}, true, []string{"s60"}, nil},
		{"a multi-line string holding headers", func(s string) string {
			return strings.Replace(s, chunkSvc(70), chunkSvc(70)+"[services.health-check]\ntype = \"http\"\npath = \"\"\"/x\\\n[[services]]\\\nname = \"evil\"\\\n[log]\\\n\"\"\"\n\n", 1)
		}, true, []string{"s70"}, nil},
		{"the first and the last service", func(s string) string {
			s = strings.Replace(s, "name = \"s0\"\nvip = \"fd00:300::1\"\nport = 80", "name = \"s0\"\nvip = \"fd00:300::1\"\nport = 82", 1)
			return s + chunkSvc(2000)
		}, true, []string{"s0", "s2000"}, nil},
		{"the services moved after a table", func(s string) string { return s + "[log]\nlevel = \"warn\"\n" }, false, nil, nil},
		{"a table between services", func(s string) string {
			return strings.Replace(strings.TrimSuffix(s, "[log]\nlevel = \"warn\"\n"), chunkSvc(100), "[log]\nlevel = \"warn\"\n"+chunkSvc(100), 1)
		}, true, nil, nil},
		{"the table changed", func(s string) string { return strings.Replace(s, "level = \"warn\"", "level = \"info\"", 1) }, false, nil, nil},
		{"a service moved", func(s string) string {
			return strings.Replace(strings.Replace(s, chunkSvc(20), "", 1), chunkSvc(280), chunkSvc(280)+chunkSvc(20), 1)
		}, true, nil, nil},
	} {
		text = tc.edit(text)
		f, es := loadAsParse(t, l, path, text)
		if es != nil {
			t.Fatalf("%s: %v", tc.name, es)
		}
		if chunked := f.Parsed < int64(len(text)/4); chunked != tc.chunked {
			t.Errorf("%s: parsed %d of %d bytes; want the chunks kept: %v", tc.name, f.Parsed, len(text), tc.chunked)
		}
		d := DiffServices(prev, f)
		var changed, removed []string
		for _, i := range d.Changed {
			changed = append(changed, f.Services[i].Name)
		}
		for _, i := range d.Removed {
			removed = append(removed, prev.Services[i].Name)
		}
		if !slices.Equal(changed, tc.changed) || !slices.Equal(removed, tc.removed) {
			t.Errorf("%s: the delta changes %v and removes %v; want %v and %v", tc.name, changed, removed, tc.changed, tc.removed)
		}
		prev = f
	}
}

// lastLine is the 1-based number of the last line of text that is line.
func lastLine(t *testing.T, text, line string) int {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == line {
			return i + 1
		}
	}
	t.Fatalf("no line %q", line)
	return 0
}

// A reload with a problem in a changed chunk names the file, the line in
// the file as it is now (lines shifted by an edit above it) and the key,
// as a load of the whole file does, and keeps what the Loader had: the
// next reload still parses only the chunk it changes.
func TestChunksReloadErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aird.toml")
	l := chunkLoader()
	ids := seq(300)
	// A comment with the quotes that end a multi-line string.
	base := strings.Replace(chunkText(ids), chunkSvc(250), chunkSvc(250)+"# a comment \"\"\"\n", 1)
	loadAsParse(t, l, path, base)
	// 13 more lines above service s150, which gets a bad port.
	shifted := strings.Replace(base, chunkSvc(3), chunkSvc(3)+"# a comment\n# and another\n\n"+chunkSvc(1000)+chunkSvc(1001), 1)
	for _, tc := range []struct {
		name, text, line, key string
		parts                 []string
	}{
		{"a bad port", strings.Replace(shifted, "name = \"s150\"\nvip = \"fd00:300::97\"\nport = 80", "name = \"s150\"\nvip = \"fd00:300::97\"\nport = 70000", 1),
			"port = 70000", "services[152].port", []string{"70000", "out of range"}},
		{"a syntax error", strings.Replace(shifted, "name = \"s150\"\nvip = \"fd00:300::97\"\nport = 80", "name = \"s150\"\nvip = \"fd00:300::97\"\nport = = 80", 1),
			"port = = 80", "services.port", []string{"syntax error", "expected value"}},
		{"a duplicate VIP against an unchanged chunk", strings.Replace(shifted, "name = \"s150\"\nvip = \"fd00:300::97\"", "name = \"s150\"\nvip = \"fd00:300::6\"", 1),
			"vip = \"fd00:300::6\"", "services[152].vip", []string{"already used by services[7]"}}, // s5, after the two inserted
		{"a duplicate name against an unchanged chunk", strings.Replace(shifted, "name = \"s150\"", "name = \"s7\"", 1),
			"name = \"s7\"", "services[152].name", []string{"duplicate service name \"s7\" (also services[9])"}},
		{"a copied chunk", shifted + chunkText(seq(40))[len(chunkHead):],
			"", "services[302].name", []string{"duplicate service name \"s0\""}},
		{"a multi-line string that runs into the unchanged part", strings.Replace(shifted, chunkSvc(150), chunkSvc(150)+"[services.health-check]\ntype = \"http\"\npath = \"\"\"/a\n", 1),
			"", "services[152].health-check.path", []string{"control character"}},
		{"an unclosed multi-line string", strings.Replace(shifted, "name = \"s150\"", "name = '''s150", 1), "", "", []string{"syntax error"}},
	} {
		_, es := loadAsParse(t, l, path, tc.text)
		if es == nil {
			t.Fatalf("%s: loaded", tc.name)
		}
		e := es[0]
		if tc.line != "" {
			want := lastLine(t, tc.text, tc.line)
			if e.File != path || e.Line != want || e.Key != tc.key || !containsAll(e.Msg, tc.parts) {
				t.Errorf("%s: %v; want %s:%d %s saying %q", tc.name, e, path, want, tc.key, tc.parts)
			}
		} else if e.File != path || e.Line == 0 || !containsAll(e.Error(), tc.parts) || tc.key != "" && e.Key != tc.key {
			t.Errorf("%s: %v; want %s, a line and %q", tc.name, e, path, tc.parts)
		}
		// The next reload, of a good file, changes one chunk.
		good := strings.Replace(shifted, "name = \"s299\"\nvip = \"fd00:300::12c\"\nport = 80", "name = \"s299\"\nvip = \"fd00:300::12c\"\nport = 81", 1)
		f, _ := loadAsParse(t, l, path, good)
		if f.Parsed >= int64(len(good)/4) {
			t.Errorf("%s: the good reload after it parsed %d of %d bytes", tc.name, f.Parsed, len(good))
		}
		loadAsParse(t, l, path, base)
	}
}

// FuzzChunks: whatever edit turns a file a Loader kept in chunks into
// another, the reload gives what a load of the whole file gives (the same
// configuration or the same errors), and so does loading the first file
// again.
func FuzzChunks(f *testing.F) {
	base := chunkText(seq(40))
	f.Add(uint16(len(chunkHead)+30), uint8(0), []byte("# x\n"))
	f.Add(uint16(len(chunkHead)+400), uint8(12), []byte("port = 81\n"))
	f.Add(uint16(len(chunkHead)+800), uint8(0), []byte(chunkSvc(500)))
	f.Add(uint16(len(chunkHead)+1200), uint8(0), []byte("desc = \"\"\"\n[[services]]\n"))
	f.Add(uint16(len(chunkHead)+1600), uint8(0), []byte("[log]\nlevel = \"warn\"\n"))
	f.Add(uint16(len(chunkHead)+2000), uint8(200), []byte("[services.health-check]\ntype = \"tcp\"\n"))
	f.Add(uint16(len(chunkHead)+2400), uint8(0), []byte("[[services]]\nname = \"s3\"\n"))
	f.Add(uint16(10), uint8(3), []byte("[[services]]"))
	f.Fuzz(func(t *testing.T, at uint16, del uint8, ins []byte) {
		if len(ins) > 1<<12 {
			return
		}
		i := min(int(at), len(base))
		j := min(i+int(del), len(base))
		edited := base[:i] + string(ins) + base[j:]
		path := filepath.Join(t.TempDir(), "aird.toml")
		l := &Loader{chunkSize: 1, chunkEvery: 4}
		loadAsParse(t, l, path, base)
		loadAsParse(t, l, path, edited)
		loadAsParse(t, l, path, base)
	})
}

// A Loader that loaded a large file from a snapshot (a restart) keeps it
// in chunks once prepared: the next reload parses the chunk it changes,
// and what it loads is worth a snapshot in its turn.
func TestChunksAfterASnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aird.toml")
	var b strings.Builder
	b.WriteString(chunkHead)
	for i := range 1300 {
		fmt.Fprintf(&b, "[[services]]\nname = \"s%d\"\nvip = \"fd00:300::%x\"\nport = 80\nbackends = [", i, i+1)
		for j := range 50 {
			fmt.Fprintf(&b, "\"fd00:100::%x\", ", 1+(i+j)%300)
		}
		b.WriteString("]\n\n")
	}
	text := b.String()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := new(Loader).Load(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := EncodeSnapshot(f, "test")
	if err != nil || snap == nil {
		t.Fatalf("no snapshot of %d bytes: %v", len(text), err)
	}
	l := &Loader{chunkEvery: 8}
	if _, hit, err := l.LoadSnapshot(path, snap, "test"); err != nil || !hit {
		t.Fatalf("LoadSnapshot: hit %v, %v", hit, err)
	}
	l.Prepare()
	if l.chunks == nil || l.chunks.index == nil {
		t.Fatal("no chunks prepared after a load from a snapshot")
	}
	edited := strings.Replace(text, "name = \"s600\"\nvip = \"fd00:300::259\"\nport = 80", "name = \"s600\"\nvip = \"fd00:300::259\"\nport = 81", 1)
	g, _ := loadAsParse(t, l, path, edited)
	if g == nil || g.Parsed >= int64(len(edited)/4) {
		t.Fatalf("the reload after a load from a snapshot parsed %v bytes of %d", g, len(edited))
	}
	// What a reload in chunks loaded is worth a snapshot (the daemon's as
	// it stops) as a whole load is: it is of the file's size.
	snap, err = EncodeSnapshot(g, "test")
	if err != nil || snap == nil {
		t.Fatalf("no snapshot of a reload in chunks: %v", err)
	}
	h, hit, err := new(Loader).LoadSnapshot(path, snap, "test")
	if err != nil || !hit || !reflect.DeepEqual(h.Config, g.Config) {
		t.Fatalf("the snapshot of a reload in chunks: hit %v, %v", hit, err)
	}
}

// Prepare gives the Loader of a file kept in chunks a buffer for the next
// read (its pages written once, so that the first reload after a start
// faults in no fresh memory for the file), with room for the file to
// grow a little; the reload reads into it and keeps the buffer it
// replaces for the one after.
func TestPrepareSpareBuffer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aird.toml")
	l := chunkLoader()
	text := chunkText(seq(300))
	if _, es := loadAsParse(t, l, path, text); es != nil {
		t.Fatal(es)
	}
	if l.spare != nil {
		t.Fatal("the first load left a spare buffer: the test would not see Prepare make one")
	}
	l.Prepare()
	if cap(l.spare) < len(text)+len(text)/32+bytes.MinRead {
		t.Fatalf("spare of capacity %d after Prepare, want room for %d bytes and 3 %% more", cap(l.spare), len(text))
	}
	spare, kept := &l.spare[:1][0], &l.chunks.shape.data[0]
	grown := strings.Replace(text, chunkSvc(10), chunkSvc(10)+chunkSvc(1000)+chunkSvc(1001), 1)
	if f, es := loadAsParse(t, l, path, grown); es != nil || f.Parsed >= int64(len(grown)) {
		t.Fatalf("reload: %v (parsed %v of %d bytes)", es, f != nil && f.Parsed < int64(len(grown)), len(grown))
	}
	if &l.chunks.shape.data[0] != spare {
		t.Fatal("the reload did not read the file into the spare buffer")
	}
	if l.spare == nil || &l.spare[:1][0] != kept {
		t.Fatal("the reload did not keep the text it replaced as the next spare")
	}
	l.Prepare()
	if &l.spare[:1][0] != kept {
		t.Fatal("Prepare replaced a spare buffer the Loader had")
	}
}
