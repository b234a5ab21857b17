package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin runs Load and fails the test if it does not return within a
// minute (a FIFO once made it wait forever).
func loadWithin(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Load(path)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("Load(%s) did not return within a minute", path)
		return nil
	}
}

// oneError asserts that err is an Errors of one entry whose message holds
// every want, and returns it.
func oneError(t *testing.T, err error, want ...string) *Error {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %v, want one config error", err)
	}
	for _, w := range want {
		if !strings.Contains(errs[0].Msg, w) {
			t.Errorf("error %q does not say %q", errs[0].Error(), w)
		}
	}
	return errs[0]
}

func TestLoadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	zero := filepath.Join(dir, "zero.toml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, kind string }{
		{fifo, "a FIFO"},
		{dir, "a directory"},
		{"/dev/zero", "a character device"},
		{zero, "a character device"}, // through a symlink
		{sock, "a socket"},
	} {
		e := oneError(t, loadWithin(t, c.path), c.kind, "must be a regular file")
		if e.File != c.path || e.Line != 0 {
			t.Errorf("%s: error %v names %s:%d", c.path, e, e.File, e.Line)
		}
	}
}

func TestLoadRefusesLargeFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		// Valid TOML all the way: one comment line.
		if err := os.WriteFile(p, []byte("#"+strings.Repeat("x", size-1)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := write("big.toml", 40<<20)
	oneError(t, loadWithin(t, big), "41943040 bytes", "at most 33554432 bytes (32 MiB)")
	over := write("over.toml", MaxFileSize+1)
	oneError(t, loadWithin(t, over), "33554433 bytes")
	// At the limit the file is read and parsed: its errors are about keys.
	at := write("at.toml", MaxFileSize)
	e := oneError(t, loadWithin(t, at), "underlay")
	if e.Key != "node.underlay" {
		t.Errorf("a file of exactly %d bytes: %v", MaxFileSize, e)
	}
	if _, err := Parse("x", make([]byte, MaxFileSize+1)); err == nil || !strings.Contains(err.Error(), "at most 33554432 bytes") {
		t.Errorf("Parse of %d bytes: %v", MaxFileSize+1, err)
	}
}

func TestShapeLimits(t *testing.T) {
	nest := func(n int, open, close, inner string) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	keys := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "k%d = 1\n", i)
		}
		return b.String()
	}
	elems := func(n int) string { return "a = [" + strings.Repeat("1,", n) + "]\n" }
	tables := func(n int) string { return "a = [" + strings.Repeat("{},", n) + "]\n" }
	long := strings.Repeat("k", MaxKeyLen)
	for _, c := range []struct {
		name, src string
		pos       string // "" when within the limits
		key, msg  string
	}{
		{"arrays at the limit", "a = " + nest(MaxDepth-1, "[", "]", "1"), "", "", ""},
		{"arrays beyond", "a = " + nest(MaxDepth, "[", "]", "1"), "1:20", "a" + strings.Repeat("[0]", MaxDepth), "nested more than 16 levels deep"},
		{"issue 11's 50,000 arrays", "a = " + nest(50000, "[", "]", ""), "1:20", "a" + strings.Repeat("[0]", MaxDepth), "nested more than 16"},
		{"inline tables at the limit", "a = " + nest(MaxDepth/2-1, "{b=", "}", "{}"), "", "", ""},
		{"inline tables beyond", "a = " + nest(MaxDepth/2, "{b=", "}", "1"), "1:27", "a" + strings.Repeat(".b", MaxDepth/2), "nested more than 16"},
		{"dotted keys beyond", strings.Repeat("a.", MaxDepth) + "a = 1", "1:33", strings.TrimSuffix(strings.Repeat("a.", MaxDepth+1), "."), "nested"},
		{"header beyond", "[" + strings.Repeat("a.", MaxDepth) + "a]", "1:34", strings.TrimSuffix(strings.Repeat("a.", MaxDepth+1), "."), "nested"},
		{"header and keys beyond", "[" + strings.Repeat("a.", MaxDepth-2) + "a]\nb.c = 1", "2:3", strings.Repeat("a.", MaxDepth-1) + "b.c", "nested"},
		{"key name at the limit", long + " = 1", "", "", ""},
		{"key name beyond", "[x]\n'" + long + "k' = 1", "2:1", "x." + long + "k", "a key name of 129 bytes; key names are at most 128"},
		{"quoted key name beyond", `"` + long + `\u0041" = 1`, "1:1", long + "A", "129 bytes"},
		{"keys at the limit", keys(MaxItems), "", "", ""},
		{"keys beyond", keys(MaxItems + 1), fmt.Sprintf("%d:1", MaxItems+1), fmt.Sprintf("k%d", MaxItems), "more than 262144 key names and array elements"},
		{"table elements beyond", tables(MaxItems), fmt.Sprintf("1:%d", 6+3*(MaxItems-1)), fmt.Sprintf("a[%d]", MaxItems-1), "more than 262144"},
		{"plain elements at the limit", elems(MaxScalars), "", "", ""},
		{"plain elements beyond", elems(MaxScalars + 1), fmt.Sprintf("1:%d", 6+2*MaxScalars), fmt.Sprintf("a[%d]", MaxScalars), "more than 2097152 plain array elements"},
		{"structure in strings and comments", "a = \"[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{\" # [[[[[[[[[[[[[[[[[[[[[\nb = '''\n" +
			nest(30, "[", "]", "") + "'''\n" + `c = """` + nest(30, "{", "}", "") + `\""""` + "\n", "", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := checkShape("f.toml", []byte(c.src))
			if c.pos == "" {
				if e != nil {
					t.Fatalf("rejected: %v", e)
				}
				return
			}
			if e == nil {
				t.Fatal("accepted")
			}
			if got := fmt.Sprintf("%d:%d", e.Line, e.Col); got != c.pos || e.Key != c.key || !strings.Contains(e.Msg, c.msg) || e.File != "f.toml" {
				t.Errorf("got %s %s: %s\nwant %s %s: %s", got, e.Key, e.Msg, c.pos, c.key, c.msg)
			}
		})
	}
}

// TestPositionsLinear shows the position scanner's cost linear in the file
// on the shapes that made it quadratic: deep nesting, and many keys under
// long table names. Doubling the input must not much more than double what
// it allocates.
func TestPositionsLinear(t *testing.T) {
	for _, shape := range []struct {
		name string
		gen  func(n int) string
	}{
		{"nested arrays", func(n int) string { return "a = " + strings.Repeat("[", n) + strings.Repeat("]", n) }},
		{"nested inline tables", func(n int) string { return "a = " + strings.Repeat("{b=", n) + "1" + strings.Repeat("}", n) }},
		{"dotted key", func(n int) string { return strings.Repeat("a.", n) + "a = 1" }},
		{"keys under a long header", func(n int) string {
			var b strings.Builder
			b.WriteString("[" + strings.Repeat("k", 4*n) + "]\n")
			for i := range n / 8 {
				fmt.Fprintf(&b, "k%d = 1\n", i)
			}
			return b.String()
		}},
	} {
		t.Run(shape.name, func(t *testing.T) {
			small, large := []byte(shape.gen(20000)), []byte(shape.gen(40000))
			a, b := allocated(func() { scanPositions(small) }), allocated(func() { scanPositions(large) })
			t.Logf("%d bytes: %d allocated; %d bytes: %d", len(small), a, len(large), b)
			if b > 3*a {
				t.Errorf("twice the input took %.1f times the memory", float64(b)/float64(a))
			}
		})
	}
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestErrorsCapped(t *testing.T) {
	src := "[node]\nunderlay = [\"10.0.0.1\"]\nuplinks = [\n" + strings.Repeat("1,\n", 250) + "]\n"
	_, err := Parse("fuzz.toml", []byte(src)) // a type error on lines 4 to 253
	checkErrors(t, err)
	var errs Errors
	errors.As(err, &errs)
	if len(errs) != MaxErrors+1 {
		t.Fatalf("%d errors listed, want %d and one counting the rest", len(errs), MaxErrors)
	}
	if e := errs[MaxErrors-1]; e.Key != "node.uplinks[99]" || e.Line != 4+99 {
		t.Errorf("the last error listed is %v, want node.uplinks[99] on line %d", e, 4+99)
	}
	if e := errs[MaxErrors]; e.Key != "" || e.Line != 4+100 || e.Msg != "150 more errors from here on are not listed (at most 100 are)" {
		t.Errorf("the last entry is %v", e)
	}
}

// TestPoolPrefixLimits: 4096 prefixes in all [[ipam.pools]] and 4096
// ipam.pod-prefixes are taken; one more is refused at the 4097th, with the
// error docs/configuration.md ("Limits") shows.
func TestPoolPrefixLimits(t *testing.T) {
	prefixes := func(from, n int) string {
		var b strings.Builder
		for i := from; i < from+n; i++ {
			fmt.Fprintf(&b, "\"fd00:%x::/32\",", i)
		}
		return "[" + strings.TrimSuffix(b.String(), ",") + "]"
	}
	pools := func(a, b int) string {
		return "[node]\nunderlay = [\"10.0.0.1\"]\n[[ipam.pools]]\nname = \"a\"\nkind = \"pod\"\nprefixes = " + prefixes(0, a) +
			"\n[[ipam.pools]]\nname = \"b\"\nkind = \"vm\"\nprefixes = " + prefixes(a, b) + "\n"
	}
	if _, err := Parse("pools.toml", []byte(pools(2048, 2048))); err != nil {
		t.Fatalf("4096 pool prefixes in two pools: %v", err)
	}
	_, err := Parse("pools.toml", []byte(pools(2048, 2049)))
	if e := oneError(t, err, "more than 4096 pool prefixes in [[ipam.pools]]; the limit is 4096"); e.Key != "ipam.pools[1].prefixes[2048]" {
		t.Errorf("4097 pool prefixes: error at %s, want the 4097th, ipam.pools[1].prefixes[2048]", e.Key)
	}
	pods := func(n int) string {
		return "[node]\nunderlay = [\"10.0.0.1\"]\n[ipam]\npod-prefixes = " + prefixes(0, n) +
			"\n[[ipam.pools]]\nname = \"pods\"\nkind = \"pod\"\nprefixes = [\"fd00::/16\"]\n"
	}
	if _, err := Parse("pods.toml", []byte(pods(4096))); err != nil {
		t.Fatalf("4096 pod prefixes: %v", err)
	}
	_, err = Parse("pods.toml", []byte(pods(4097)))
	if e := oneError(t, err, "more than 4096 pod prefixes; the limit is 4096"); e.Key != "ipam.pod-prefixes[4096]" {
		t.Errorf("4097 pod prefixes: error at %s, want ipam.pod-prefixes[4096]", e.Key)
	}
}
