package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestConfigCheck(t *testing.T) {
	root := filepath.Join("..", "..")
	out, _, code := runCLI("config", "check", filepath.Join(root, "configs", "aird.toml"))
	if code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("example config: exit %d, %q", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[node]\nunderlay = [\"fd00::1\"]\nASN = 1\n[log]\nlevel = \"loud\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCLI("config", "check", bad)
	if code != 1 || !strings.Contains(errs, bad+":3:1: node.ASN") || !strings.Contains(errs, bad+":5:1: log.level") {
		t.Fatalf("bad config: exit %d, want 1 and both errors; stderr:\n%s", code, errs)
	}
	out, _, code = runCLI("config", "check", "-o", "json", bad)
	var res struct {
		Valid  bool `json:"valid"`
		Errors []struct {
			Line int    `json:"line"`
			Key  string `json:"key"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.Valid || len(res.Errors) != 2 || res.Errors[0].Line != 3 {
		t.Fatalf("-o json: exit %d, %+v, %v\n%s", code, res, err, out)
	}
}

// TestConfigCheckJSONErrors: with -o json each error is {"file", "line",
// "column", "key", "message"}, line and column 0 when the error has no
// place in the file (docs/configuration.md, "Checking a file").
func TestConfigCheckJSONErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		src               string
		line, column      int
		key, messageStart string
	}{
		{"[node]\nunderlay = [\"fd00::1\"]\nrouter_id = \"10.0.0.1\"\n", 3, 1, "node.router_id", `unknown key "router_id"`},
		{"", 0, 0, "node.underlay", "at least one underlay address is required"},
	} {
		f := filepath.Join(dir, "aird.toml")
		if err := os.WriteFile(f, []byte(c.src), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _, code := runCLI("config", "check", "-o", "json", f)
		var res struct {
			Errors []map[string]any `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || len(res.Errors) != 1 {
			t.Fatalf("%q: exit %d, %v\n%s", c.src, code, err, out)
		}
		e := res.Errors[0]
		msg, _ := e["message"].(string)
		if len(e) != 5 || e["file"] != f || e["line"] != float64(c.line) || e["column"] != float64(c.column) || e["key"] != c.key ||
			!strings.HasPrefix(msg, c.messageStart) {
			t.Errorf("%q: error %v, want file %s line %d column %d key %s message %q…", c.src, e, f, c.line, c.column, c.key, c.messageStart)
		}
	}
}
