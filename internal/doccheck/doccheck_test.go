package doccheck

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

const root = "../.."

// TestDocsNameOnlyExistingKeys: every configuration key or table a document
// names in code exists in the schema.
func TestDocsNameOnlyExistingKeys(t *testing.T) {
	keys := Keys()
	refs, err := Refs(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range refs {
		k, ok := ConfigKey(r.Text)
		if !ok {
			continue
		}
		n++
		if _, exists := keys[k]; !exists {
			t.Errorf("%s:%d: `%s` names configuration key %q, which does not exist", r.File, r.Line, r.Text, k)
		}
	}
	if n < 50 {
		t.Errorf("only %d configuration keys found in the documents: is the scanner broken?", n)
	}
}

// TestReferenceCoversSchema: docs/configuration.md documents every key of
// the schema, each once, under its own table, and no other.
func TestReferenceCoversSchema(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys()
	rows, tables := ReferenceTables(string(b))
	seen := map[string]int{}
	for _, r := range append(rows, tables...) {
		if _, ok := keys[r.Key]; !ok {
			t.Errorf("docs/configuration.md:%d: documents %q, which is not in the schema", r.Line, r.Key)
		}
		if prev, dup := seen[r.Key]; dup {
			t.Errorf("docs/configuration.md:%d: %q documented again (first at line %d)", r.Line, r.Key, prev)
		}
		seen[r.Key] = r.Line
	}
	var missing []string
	for k := range keys {
		if _, ok := seen[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		t.Errorf("docs/configuration.md does not document %q", k)
	}
}

func TestConfigKey(t *testing.T) {
	for span, want := range map[string]string{
		"[bgp.drain]":                    "bgp.drain",
		"[[bgp.peers]]":                  "bgp.peers",
		"bgp.peers[1].bfd.min-rx":        "bgp.peers.bfd.min-rx",
		"node.underlay[0]":               "node.underlay",
		"services[i].vip":                "services.vip",
		"datapath.forwarding = \"keep\"": "datapath.forwarding",
	} {
		if got, ok := ConfigKey(span); !ok || got != want {
			t.Errorf("ConfigKey(%q) = %q, %v; want %q", span, got, ok, want)
		}
	}
	for _, span := range []string{"airctl status", "log.Level", "/etc/aird/aird.toml", "node"} {
		if got, ok := ConfigKey(span); ok {
			t.Errorf("ConfigKey(%q) = %q, want none", span, got)
		}
	}
}
