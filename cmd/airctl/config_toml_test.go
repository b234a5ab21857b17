package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/config"
)

// TestConfigTOMLRoundTrip: what `airctl config show` prints for a running
// configuration loads again as the same configuration, and uses the file's
// key names.
func TestConfigTOMLRoundTrip(t *testing.T) {
	root := filepath.Join("..", "..")
	files := []string{
		filepath.Join(root, "configs", "aird.toml"),
		filepath.Join(root, "configs", "demo.toml"),
		filepath.Join(root, "integration", "testdata", "nspawn", "aird.toml"),
	}
	good, err := filepath.Glob(filepath.Join(root, "internal", "config", "testdata", "good", "*.toml"))
	if err != nil || len(good) == 0 {
		t.Fatalf("no good configurations in internal/config/testdata/good: %v", err)
	}
	files = append(files, good...)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			file, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(file.Config)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := configTOML(&out, want); err != nil {
				t.Fatal(err)
			}
			again, err := config.Parse("shown.toml", out.Bytes())
			if err != nil {
				t.Fatalf("the shown configuration does not load: %v\n%s", err, out.String())
			}
			got, err := json.Marshal(again)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("round trip changed the configuration:\nwant %s\ngot  %s\nTOML:\n%s", want, got, out.String())
			}
			if strings.Contains(out.String(), "_") {
				t.Errorf("snake_case in the TOML (the file's keys are kebab-case):\n%s", out.String())
			}
		})
	}
}

func TestConfigTOMLShape(t *testing.T) {
	cfg, err := config.Parse("x.toml", []byte(`
[node]
name = "n1"
router-id = "10.0.0.1"
underlay = ["fd00::1"]
[bgp]
asn = 65001
[[bgp.peers]]
name = "tor\"1"
address = "fd00::fe"
asn = "external"
password = "secret"
[api]
socket-mode = 0o640
`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(cfg)
	var out bytes.Buffer
	if err := configTOML(&out, raw); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"[node]\nname = \"n1\"\nrouter-id = \"10.0.0.1\"\n", "[[bgp.peers]]\nname = \"tor\\\"1\"\n",
		"asn = \"external\"", "hold-time = \"9s\"", "socket-mode = 0o640", "[bgp.peers.import]\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	if strings.Contains(s, "secret") || strings.Contains(s, "password =") {
		t.Errorf("the password is shown:\n%s", s)
	}
}
