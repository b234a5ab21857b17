package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

// snapRoundTrip encodes cfg and decodes it again.
func snapRoundTrip(t testing.TB, cfg *Config) *Config {
	t.Helper()
	var e snapEncoder
	if err := e.value(reflect.ValueOf(cfg).Elem()); err != nil {
		t.Fatal(err)
	}
	d := snapDecoder{buf: e.buf}
	out := new(Config)
	if err := d.value(reflect.ValueOf(out).Elem()); err != nil {
		t.Fatal(err)
	}
	if len(d.buf) != 0 {
		t.Fatalf("%d bytes left after decoding", len(d.buf))
	}
	return out
}

// TestSnapshotDecodesAsParsed: every example and test configuration
// decodes from its snapshot deeply equal to the parse (nil and empty
// slices alike).
func TestSnapshotDecodesAsParsed(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	shipped, _ := filepath.Glob("../../configs/*.toml")
	files = append(files, shipped...)
	if len(files) < 5 {
		t.Fatalf("only %d configurations found", len(files))
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := Parse(path, data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := snapRoundTrip(t, cfg); !reflect.DeepEqual(got, cfg) {
			t.Errorf("%s: decoded\n%+v\nparsed\n%+v", path, got, cfg)
		}
	}
}

// TestSnapshotCarriesEveryField fills every field of a Config (every
// slice with two elements, every pointer set) and decodes it back: a
// field the encoding would drop, or a type it cannot carry, fails here.
func TestSnapshotCarriesEveryField(t *testing.T) {
	cfg := new(Config)
	fillValue(reflect.ValueOf(cfg).Elem(), 0)
	if got := snapRoundTrip(t, cfg); !reflect.DeepEqual(got, cfg) {
		t.Fatalf("decoded\n%+v\nfilled\n%+v", got, cfg)
	}
	if len(cfg.Services[1].Backends) != 2 || cfg.Services[1].Backends[1].Weight == 0 || cfg.BGP == nil {
		t.Fatalf("not filled: %+v", cfg)
	}
}

// fillValue sets v and everything in it to values other than zero.
func fillValue(v reflect.Value, n int) {
	switch v.Type() {
	case addrType:
		v.Set(reflect.ValueOf(netip.AddrFrom16([16]byte{0xfd, 15: byte(n + 1)}).WithZone([]string{"", "eth0"}[n%2])))
		return
	case prefixType:
		v.Set(reflect.ValueOf(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n), 0, 0}), 16)))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(-3 - n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(300 + n))
	case reflect.String:
		v.SetString(strings.Repeat("x", n+1))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillValue(s.Index(i), n+i+1)
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(p.Elem(), n+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			fillValue(v.Field(i), n+i)
		}
	default:
		panic("fillValue: " + v.Kind().String())
	}
}

// writeLarge writes a configuration of SnapshotMinSize or more.
func writeLarge(t testing.TB, path string, vips int) string {
	t.Helper()
	sc := testutil.LBScale{VIPs: vips, PerVIP: 100, Pool: 2000, Seed: 1}
	body := "[node]\nname = \"snap\"\nunderlay = [\"fd00:100:1::1\"]\n\n" + sc.TOML(nil)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return body
}

// TestLoadSnapshot: a snapshot stands for the file's content, the
// program and nothing else; whatever does not match is passed over and
// the file is parsed.
func TestLoadSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aird.toml")
	body := writeLarge(t, path, 700)
	if len(body) < SnapshotMinSize {
		t.Fatalf("the file is %d bytes", len(body))
	}
	want, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := EncodeSnapshot(want, "build-1")
	if err != nil || snap == nil {
		t.Fatalf("no snapshot: %v", err)
	}
	load := func(snap []byte, program string) (*File, bool) {
		t.Helper()
		f, hit, err := new(Loader).LoadSnapshot(path, snap, program)
		if err != nil {
			t.Fatal(err)
		}
		return f, hit
	}
	f, hit := load(snap, "build-1")
	if !hit {
		t.Fatal("the snapshot of the unchanged file was not used")
	}
	if f.Path != want.Path || f.Digest != want.Digest || !reflect.DeepEqual(f.Config, want.Config) {
		t.Fatal("the snapshot's configuration differs from the file's")
	}

	// Not the same program, a damaged or cut snapshot: the file is parsed.
	bad := bytes.Clone(snap)
	bad[len(bad)-3] ^= 1
	for name, tc := range map[string]struct {
		snap    []byte
		program string
	}{
		"other program": {snap, "build-2"},
		"no program":    {snap, ""},
		"damaged":       {bad, "build-1"},
		"cut":           {snap[:len(snap)-10], "build-1"},
		"header only":   {snap[:snapshotHeader], "build-1"},
		"garbage":       {[]byte("not a snapshot"), "build-1"},
	} {
		f, hit := load(tc.snap, tc.program)
		if hit {
			t.Errorf("%s: the snapshot was used", name)
		}
		if !reflect.DeepEqual(f.Config, want.Config) {
			t.Errorf("%s: the parsed configuration differs", name)
		}
	}

	// The file changed (one backend): the snapshot no longer stands for it.
	changed := strings.Replace(body, `"fd00:b::`, `"fd00:c::`, 1)
	if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	f, hit = load(snap, "build-1")
	if hit {
		t.Fatal("a snapshot of the earlier content was used")
	}
	if reflect.DeepEqual(f.Config, want.Config) || f.Digest == want.Digest {
		t.Fatal("the changed file loaded as before")
	}
	if !strings.HasPrefix(f.Services[0].Backends[0].Address.String(), "fd00:c::") {
		t.Fatalf("first backend %s", f.Services[0].Backends[0].Address)
	}
}

// TestSnapshotOnlyWorthIt: a small file, or one with included files, gets
// no snapshot.
func TestSnapshotOnlyWorthIt(t *testing.T) {
	small, err := Load("testdata/good/03-services.toml")
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := EncodeSnapshot(small, "build-1"); snap != nil || err != nil {
		t.Errorf("a small file: %d bytes, %v", len(snap), err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "aird.toml")
	writeLarge(t, path, 700)
	large, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	large.Include = []string{"services.d/*.toml"}
	if snap, err := EncodeSnapshot(large, "build-1"); snap != nil || err != nil {
		t.Errorf("with included files: %d bytes, %v", len(snap), err)
	}
}

// FuzzSnapshot decodes any payload under a valid header: it must not
// panic, and what decodes encodes back to the same bytes.
func FuzzSnapshot(f *testing.F) {
	cfg, err := Parse("03", mustRead(f, "testdata/good/03-services.toml"))
	if err != nil {
		f.Fatal(err)
	}
	var e snapEncoder
	if err := e.value(reflect.ValueOf(cfg).Elem()); err != nil {
		f.Fatal(err)
	}
	f.Add(e.buf)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		key := [32]byte{1}
		sum := sha256.Sum256(payload)
		snap := append(append(append([]byte(snapshotMagic), key[:]...), sum[:]...), payload...)
		out := decodeSnapshot(snap, key)
		if out == nil {
			return
		}
		var e snapEncoder
		if err := e.value(reflect.ValueOf(out).Elem()); err != nil {
			t.Fatal(err)
		}
		if got := snapRoundTrip(t, out); !reflect.DeepEqual(got, out) {
			t.Fatal("a decoded snapshot does not round-trip")
		}
	})
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSnapshotThenChunkedReload: after a start from the snapshot the
// Loader keeps the file's chunks (made by Prepare after READY, or by the
// next load itself), so a reload that changes one service parses a small
// part of the file and loads what a parse gives.
func TestSnapshotThenChunkedReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aird.toml")
	body := writeLarge(t, path, 700)
	f0, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := EncodeSnapshot(f0, "build-1")
	if err != nil || snap == nil {
		t.Fatalf("no snapshot: %v", err)
	}
	changed := strings.Replace(body, `"fd00:b::`, `"fd00:c::`, 1)
	for _, prepare := range []bool{true, false} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		l := new(Loader)
		if _, hit, err := l.LoadSnapshot(path, snap, "build-1"); err != nil || !hit {
			t.Fatalf("snapshot not used: %v", err)
		}
		if prepare {
			l.Prepare()
		}
		if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := l.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Config, want.Config) || got.Digest != want.Digest {
			t.Fatalf("prepare %v: the reload differs from a parse", prepare)
		}
		if got.Parsed*4 > int64(len(changed)) {
			t.Fatalf("prepare %v: the reload parsed %d of %d bytes", prepare, got.Parsed, len(changed))
		}
	}
}

// A length that only a snapshot made to exhaust memory can have (a
// million services in a megabyte: each would take a byte) is refused
// before the slice is made.
func TestSnapshotDecodeBoundsAllocation(t *testing.T) {
	const n = 1 << 20
	if s := reflect.TypeFor[Service]().Size(); s <= maxDecodedRatio {
		t.Fatalf("Service is %d bytes: the case needs a larger element", s)
	}
	buf := binary.AppendUvarint(nil, n+1)
	buf = append(buf, make([]byte, n)...)
	var svcs []Service
	d := snapDecoder{buf: buf}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := d.value(reflect.ValueOf(&svcs).Elem()); err == nil {
		t.Fatalf("decoded %d services from %d bytes", len(svcs), len(buf))
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > maxDecodedRatio*uint64(len(buf)) {
		t.Fatalf("decoding %d bytes allocated %d", len(buf), got)
	}
	// Within the bound, a slice of small elements still decodes.
	small := binary.AppendUvarint(nil, 4)
	small = append(small, 0, 0, 0)
	var ports []int
	d = snapDecoder{buf: small}
	if err := d.value(reflect.ValueOf(&ports).Elem()); err != nil || len(ports) != 3 {
		t.Fatalf("3 ints: %v, %v", ports, err)
	}
}

// A snapshot that does not stand for the file costs the start no second
// read of it: LoadSnapshot then allocates what Load does, not a second
// file-sized buffer (the file is a small configuration behind a 4 MB
// comment, so that its buffer dominates what a load allocates).
func TestLoadSnapshotReadsAMismatchOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aird.toml")
	body := "# " + strings.Repeat("x", 4<<20) + "\n" + string(mustRead(t, "testdata/good/03-services.toml"))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := make([]byte, snapshotHeader+16) // the right magic, another key
	copy(stale, snapshotMagic)
	allocated := func(load func(l *Loader) (*File, error)) uint64 {
		t.Helper()
		least := ^uint64(0)
		for range 3 {
			l := new(Loader)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			f, err := load(l)
			runtime.ReadMemStats(&after)
			if err != nil || len(f.Services) == 0 {
				t.Fatalf("load: %v", err)
			}
			least = min(least, after.TotalAlloc-before.TotalAlloc)
		}
		return least
	}
	plain := allocated(func(l *Loader) (*File, error) { return l.Load(path) })
	snap := allocated(func(l *Loader) (*File, error) {
		f, fromSnap, err := l.LoadSnapshot(path, stale, "build-1")
		if fromSnap {
			t.Fatal("the stale snapshot was used")
		}
		return f, err
	})
	if snap > plain+uint64(len(body))/2 {
		t.Errorf("LoadSnapshot with a stale snapshot allocated %d bytes, Load %d: the %d-byte file was read twice",
			snap, plain, len(body))
	}
	t.Logf("Load %d bytes, LoadSnapshot (stale) %d bytes, file %d bytes", plain, snap, len(body))
}
