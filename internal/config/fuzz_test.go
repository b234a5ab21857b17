package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that every error it returns is
// well-formed and in line order, that a configuration it accepts does not
// differ from itself, that the position scanner finds every key the TOML
// parser decoded, and that the first pass of a file (without positions)
// accepts what the full pass accepts. It bounds each input's cost: Parse may allocate at
// most fuzzAllocBase + fuzzAllocPerByte bytes per input byte (the quadratic
// scanner of issue 11 took 37,500 per byte on nested arrays), and an input
// that takes longer than fuzzTimeout crashes the run, which saves it. The
// first pass (checkShape) stops only on text the parser rejects, and lets
// no file through that is nested deeper than MaxDepth.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*/*.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range append(seeds, "../../configs/aird.toml") {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range hostileSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := boundedParse(t, data)
		if err != nil {
			if cfg != nil {
				t.Errorf("Parse returned a config and an error")
			}
			checkErrors(t, err)
		} else {
			if cfg == nil {
				t.Fatal("Parse returned neither a config nor an error")
			}
			if d := Diff(cfg, cfg); len(d) != 0 {
				t.Errorf("Diff(cfg, cfg) = %v", d)
			}
		}

		data = stripBOM(data)
		shape := &shapeScanner{src: data, line: 1}
		shape.document()
		raw, err := decodeTOML(data)
		if err != nil {
			return
		}
		if shape.stopped && shape.err == nil {
			t.Fatalf("the shape scan stopped at %d:%d, but the TOML parser accepts the file", shape.line, shape.i-shape.lineStart+1)
		}
		if shape.err != nil {
			return // beyond a limit: Parse did not parse it
		}
		if d := treeDepth(raw); d > MaxDepth {
			t.Fatalf("the shape scan let a file nested %d deep through", d)
		}
		// Every key of valid TOML has a position.
		pos := scanPositions(data)
		walkKeys("", raw, func(path string) {
			if !pos.written(path) {
				t.Errorf("no position for %q", path)
			}
		})
		// The fast pass (no positions, the tree tells which keys are
		// written) accepts exactly what the full pass accepts, as the same
		// configuration.
		fast := build(&reporter{file: "fuzz.toml", fast: true, raw: raw}, raw)
		r := &reporter{file: "fuzz.toml", pos: pos}
		full := build(r, raw)
		if fullErr := r.err(); (fast != nil) != (fullErr == nil) {
			t.Fatalf("the fast pass accepts: %v; the full pass says: %v", fast != nil, fullErr)
		}
		if fast != nil && len(Diff(fast, full)) != 0 {
			t.Errorf("the fast and the full pass differ: %v", Diff(fast, full))
		}
	})
}

// checkErrors checks the form of Parse's errors: at most MaxErrors and one
// that counts the rest, well-formed, in line order.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
	}
	if len(errs) > MaxErrors+1 {
		t.Errorf("%d errors listed; at most %d and one counting the rest may be", len(errs), MaxErrors)
	}
	for i, e := range errs {
		if e == nil {
			t.Fatalf("errs[%d] is nil", i)
		}
		if e.File != "fuzz.toml" || e.Line < 0 || e.Col < 0 || (e.Line == 0 && e.Col != 0) || e.Msg == "" {
			t.Errorf("malformed error %#v", e)
		}
		if i > 0 && (e.Line < errs[i-1].Line || e.Line == errs[i-1].Line && e.Col < errs[i-1].Col) {
			t.Errorf("errors out of order: %v before %v", errs[i-1], e)
		}
		_ = e.Error()
	}
}

const (
	fuzzAllocBase    = 4 << 20
	fuzzAllocPerByte = 4096
	fuzzTimeout      = 20 * time.Second
)

// hostileSeeds are small versions of the files of issue 11, and strings
// that hide structure.
var hostileSeeds = []string{
	"a = " + strings.Repeat("[", 40) + strings.Repeat("]", 40),
	"a = " + strings.Repeat("{b=", 20) + "1" + strings.Repeat("}", 20),
	strings.Repeat("a.", 30) + "a = 1",
	"[" + strings.Repeat("a.", 30) + "a]",
	"[[a]]\n[[a.b]]\n[a.b.c]\nd = [{e = [[1]]}]",
	`x = """` + "\n[a]\n" + `"""""` + "\ny = '''[[b]]'''''\n" + `z = "\"[" # ]`,
	"t = {\n  a = 1, # c\n  b = [\n 2,\n ],\n}\n",
}

// boundedParse runs Parse within the bounds of FuzzParse.
func boundedParse(t *testing.T, data []byte) (*Config, error) {
	watchdog := time.AfterFunc(fuzzTimeout, func() {
		panic(fmt.Sprintf("Parse of a %d-byte input took over %s: %q", len(data), fuzzTimeout, data))
	})
	defer watchdog.Stop()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cfg, err := Parse("fuzz.toml", data)
	runtime.ReadMemStats(&after)
	if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(fuzzAllocBase+fuzzAllocPerByte*len(data)); alloc > limit {
		t.Fatalf("Parse of a %d-byte input allocated %d bytes, above the bound of %d", len(data), alloc, limit)
	}
	return cfg, err
}

// treeDepth is the nesting of a parsed TOML value: one level per key and
// per array.
func treeDepth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, 1+treeDepth(e))
		}
	case []map[string]any:
		for _, e := range x {
			d = max(d, 1+treeDepth(e))
		}
	case []any:
		for _, e := range x {
			d = max(d, 1+treeDepth(e))
		}
	}
	return d
}

// walkKeys calls fn for the path of every key and array element in v.
func walkKeys(path string, v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := joinPath(path, k)
			fn(p)
			walkKeys(p, e, fn)
		}
	case []map[string]any:
		for i, e := range x {
			p := indexPath(path, i)
			fn(p)
			walkKeys(p, e, fn)
		}
	case []any:
		for i, e := range x {
			p := indexPath(path, i)
			fn(p)
			walkKeys(p, e, fn)
		}
	}
}
