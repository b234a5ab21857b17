package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// decodeSplit decodes data the way a large file is decoded (in parts of
// at most parts runs of services), reporting whether the parts were used.
func decodeSplit(t testing.TB, data []byte, parts int) (raw map[string]any, split bool) {
	t.Helper()
	shape := scanShape(data)
	if shape.stopped || shape.err != nil {
		return nil, false
	}
	plan, ok := splitServices(data, shape.headers, parts)
	if !ok {
		return nil, false
	}
	return decodeParts(plan, 2)
}

// checkSplit asserts that decoding data in parts, when it is decoded in
// parts, gives the tree one decode of the whole file gives, and that a
// file the parser rejects is never decoded in parts; it returns whether
// the parts were used.
func checkSplit(t testing.TB, name string, data []byte, parts int) bool {
	t.Helper()
	if scanShape(data).err != nil {
		return false // beyond the limits: never parsed (and slow to)
	}
	whole, err := decodeTOML(data)
	raw, split := decodeSplit(t, data, parts)
	switch {
	case !split:
	case err != nil:
		t.Errorf("%s: decoded in parts, but the parser rejects the whole file: %v", name, err)
	case !reflect.DeepEqual(raw, whole):
		t.Errorf("%s: decoded in parts to\n%#v\nwhole to\n%#v", name, raw, whole)
	}
	return split
}

// Every configuration of the tests and the examples decodes in parts to
// the tree one decode of the whole file gives (those with two services or
// more are cut; the others are decoded whole).
func TestSplitDecodesAsWhole(t *testing.T) {
	files, err := filepath.Glob("testdata/*/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../../configs/*.toml")
	files = append(files, more...)
	split := 0
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data = stripBOM(data)
		for _, parts := range []int{2, 3, 64} {
			if checkSplit(t, path, data, parts) {
				split++
			}
		}
	}
	if split == 0 {
		t.Fatal("no file was decoded in parts")
	}
	t.Logf("%d of %d files × 3 cuts decoded in parts", split, len(files))
}

// The scale configuration (10,000 services of 100 backends, bench/daemon.sh)
// decodes in parts to the same tree and loads to the same configuration
// as decoded whole.
func TestSplitScale(t *testing.T) {
	sc := testutil.LBScale{VIPs: 10000, PerVIP: 100, Pool: 2000, Seed: 1}
	data := []byte("[node]\nname = \"bench\"\nunderlay = [\"fd00:100:1::1\"]\n\n" + sc.TOML(nil) + "\n[log]\nlevel = \"warn\"\n")
	if len(data) < splitMinSize {
		t.Fatalf("%d bytes: below splitMinSize", len(data))
	}
	if !checkSplit(t, "scale", data, 8) {
		t.Fatal("the scale file was not decoded in parts")
	}
	cfg, err := Parse("scale.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := decodeTOML(data)
	if err != nil {
		t.Fatal(err)
	}
	whole := build(&reporter{file: "scale.toml", fast: true, raw: raw}, raw)
	if whole == nil || !reflect.DeepEqual(cfg, whole) {
		t.Fatal("Parse of the file in parts differs from the configuration of the whole file")
	}
	if len(cfg.Services) != sc.VIPs || cfg.Services[sc.VIPs-1].Name != fmt.Sprintf("s%d", sc.VIPs-1) || cfg.Log.Level != "warn" {
		t.Fatalf("%d services, the last %q, log level %q", len(cfg.Services), cfg.Services[len(cfg.Services)-1].Name, cfg.Log.Level)
	}
}

// svcText is a service as the tests below write it.
func svcText(i int) string {
	return fmt.Sprintf("[[services]]\nname = \"s%d\"\nvip = \"fd00:300::%x\"\nport = 80\nbackends = [\"fd00:100::1\", \"fd00:100::2\"]\n", i, i+1)
}

// Text that looks like a [[services]] header but is not one (in strings,
// comments, arrays), headers written other ways, and files whose meaning a
// cut could change: each decodes in parts to the whole file's tree or is
// decoded whole, and a file the parser rejects is rejected.
func TestSplitHostile(t *testing.T) {
	a, b, c := svcText(1), svcText(2), svcText(3)
	tables := "[[services]]\nname = \"t\"\n[[services.backends]]\naddress = \"fd00::9\"\n[services.backends.health]\nx = 1\n[[services.backends]]\naddress = \"fd00::a\"\n"
	for _, tc := range []struct {
		name, src string
		split     bool // the file is decoded in parts
	}{
		{"plain", a + b + c, true},
		{"CRLF", strings.ReplaceAll(a+b+c, "\n", "\r\n"), true},
		{"a header in a multi-line basic string", a + "description = \"\"\"\n[[services]]\nname = \"x\"\n\"\"\"\n" + b, true},
		{"a header in a multi-line literal string", a + "description = '''\n[[services]]\n'''\n" + b, true},
		{"quotes that end a multi-line string", a + "description = \"\"\"a\"\"\"\"\"\n[[services]]\nname = \"y\"\n" + b, true},
		{"a header in a comment", a + "# [[services]]\n" + b + "  # [bgp]\n" + c, true},
		{"arrays across lines", a + "x = [\n[1, 2],\n[[3]],\n  [\"[[services]]\"]\n]\n" + b, true},
		{"inline tables", a + "health-check = { type = \"tcp\", interval = \"1s\" }\n" + b + c, true},
		{"sub-tables of a service", a + "[services.health-check]\ntype = \"tcp\"\n" + b + tables + c, true},
		{"other tables between services", a + "[node]\nname = \"n\"\n" + b + "[log]\nlevel = \"warn\"\n" + c, true},
		{"other tables before and after", "[node]\nname = \"n\"\n" + a + b + "[[ipam.pools]]\nname = \"p\"\n", true},
		{"root keys first", "include = []\n" + a + b, true},
		{"headers with blanks and quotes", "[[ services ]]\nname = \"a\"\n[[\"services\"]]\nname = \"b\"\n[[ 'services' ]]\nname = \"c\"\n", true},
		{"indented headers", "  [[services]]\nname = \"a\"\n\t[[services]]\nname = \"b\"\n", true},
		{"no newline at the end", a + strings.TrimSuffix(b, "\n"), true},
		{"a sub-table after another table", a + b + "[log]\nlevel = \"warn\"\n[services.health-check]\ntype = \"tcp\"\n", false},
		{"a sub-table before any service", "[services.x]\ny = 1\n" + a + b, false},
		{"a services table", a + b + "[services]\nx = 1\n", false},
		{"a services array of values", "services = [{ name = \"x\" }]\n" + a + b, false},
		{"a dotted services key at the root", "services.x = 1\n" + a + b, false},
		{"one service", a, false},
		{"a table twice, apart", "[log]\nlevel = \"warn\"\n" + a + b + "[log]\nformat = \"json\"\n", false},
		{"a key twice in a service", a + "port = 81\n" + b, false},
		{"a syntax error in a service", a + "port = = 1\n" + b, false},
		{"a syntax error after the services", a + b + "[log\n", false},
		{"backends as tables, split apart", tables + tables + a, true},
		{"a sub-table twice", a + "[services.health-check]\ntype = \"tcp\"\n[services.health-check]\ntype = \"tcp\"\n" + b, false},
	} {
		data := []byte(tc.src)
		if got := checkSplit(t, tc.name, data, 2); got != tc.split {
			t.Errorf("%s: decoded in parts %v, want %v", tc.name, got, tc.split)
		}
	}
}

// A large file with a problem gets the error the whole file gets: the
// parser's for a syntax error, the checks' for a bad value, each at the
// line of the file.
func TestSplitErrors(t *testing.T) {
	sc := testutil.LBScale{VIPs: 8000, PerVIP: 100, Pool: 2000, Seed: 1}
	good := "[node]\nname = \"bench\"\nunderlay = [\"fd00:100:1::1\"]\n" + sc.TOML(nil)
	lines := strings.Split(good, "\n")
	at := 0
	for i, l := range lines {
		if l == "name = \"s5000\"" {
			at = i
		}
	}
	if at == 0 {
		t.Fatal("service s5000 not found")
	}
	for _, tc := range []struct {
		name, line, msg string
	}{
		{"syntax", "port = = 80", "syntax error"},
		{"value", "port = 70000", "port"},
	} {
		bad := append([]string(nil), lines...)
		bad[at+2] = tc.line // the service's port line
		data := []byte(strings.Join(bad, "\n"))
		_, err := Parse("big.toml", data)
		var es Errors
		if !asErrors(err, &es) || len(es) == 0 {
			t.Fatalf("%s: error %v", tc.name, err)
		}
		if e := es[0]; e.File != "big.toml" || e.Line != at+3 || !strings.Contains(e.Error(), tc.msg) {
			t.Errorf("%s: %v, want big.toml:%d saying %q", tc.name, e, at+3, tc.msg)
		}
	}
}

// FuzzSplit: whatever the file, decoding it in parts gives the tree one
// decode of the whole file gives, or is not done; a file the parser
// rejects is never decoded in parts.
func FuzzSplit(f *testing.F) {
	a, b := svcText(1), svcText(2)
	for _, s := range []string{
		a + b,
		a + "description = \"\"\"\n[[services]]\n\"\"\"\n" + b,
		a + "x = '''\n[[services]]\n'''\n[log]\n" + b + "[services.health-check]\n",
		"[node]\r\n" + a + "# [[services]]\r\n" + b,
		"services = 1\n" + a + b,
		a + "x = [\n[1],\n]\n" + b + "[services]\n",
	} {
		f.Add([]byte(s))
	}
	for _, s := range hostileSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		data = stripBOM(data)
		watchdog := time.AfterFunc(fuzzTimeout, func() {
			panic(fmt.Sprintf("decoding a %d-byte input took over %s: %q", len(data), fuzzTimeout, data))
		})
		defer watchdog.Stop()
		for _, parts := range []int{2, 3} {
			checkSplit(t, "fuzz", data, parts)
		}
	})
}
