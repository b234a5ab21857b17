package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns is
// well-formed and in line order, that a configuration it accepts does not
// differ from itself, and that the position scanner finds every key the
// TOML parser decoded.
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
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err != nil {
			if cfg != nil {
				t.Errorf("Parse returned a config and an error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
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
		} else {
			if cfg == nil {
				t.Fatal("Parse returned neither a config nor an error")
			}
			if d := Diff(cfg, cfg); len(d) != 0 {
				t.Errorf("Diff(cfg, cfg) = %v", d)
			}
		}

		// Every key of valid TOML has a position.
		data = stripBOM(data)
		raw, err := decodeTOML(data)
		if err != nil {
			return
		}
		pos := scanPositions(data)
		walkKeys("", raw, func(path string) {
			if _, ok := pos[path]; !ok {
				t.Errorf("no position for %q", path)
			}
		})
	})
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
