package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aird-net/aird/internal/config"
)

// FuzzParse checks that Parse never panics, that every error it returns is
// well-formed, and that a configuration it accepts does not differ from
// itself.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*/*.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range append(seeds, examplePath) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.toml", data)
		if err != nil {
			if cfg != nil {
				t.Errorf("Parse returned a config and an error")
			}
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T is not a non-empty config.Errors: %v", err, err)
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
			return
		}
		if cfg == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		if d := config.Diff(cfg, cfg); len(d) != 0 {
			t.Errorf("Diff(cfg, cfg) = %v", d)
		}
	})
}
