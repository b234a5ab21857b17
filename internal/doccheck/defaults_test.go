package doccheck

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/config"
)

// baseSections is a small valid file with one element of every array of
// tables, so that every key has a table to be written in. A key is set by
// writing it, as a dotted key, in the section whose table is the longest
// prefix of its path. A section marked only is written only for its own
// keys, with the uplink it needs in [node] (a [[datapath.uplink]] entry
// names one of node.uplinks, which would make node.uplinks = [] invalid).
var baseSections = []struct {
	header, table, body string
	only                bool
}{
	{"", "", "", false}, // top-level keys (include)
	{"[node]", "node", `underlay = ["fd00:1::1", "10.0.0.1"]`, false},
	{"[datapath]", "datapath", "", false},
	{"[[datapath.uplink]]", "datapath.uplink", `name = "eth0"`, true},
	{"[bgp]", "bgp", "asn = 65001", false},
	{"[[bgp.peers]]", "bgp.peers", "address = \"fd00:1::2\"\nasn = 65002", false},
	{"[ipam]", "ipam", "", false},
	{"[[ipam.pools]]", "ipam.pools", "name = \"svc\"\nkind = \"service\"\nprefixes = [\"fd00:300::/112\"]", false},
	{"[lb]", "lb", "", false},
	{"[[services]]", "services", "name = \"web\"\nvip = \"fd00:300::10\"\nhealth-check.port = 8080", false},
	{"[[services.backends]]", "services.backends", `address = "fd00:100::1"`, false},
	{"[api]", "api", "", false},
	{"[metrics]", "metrics", "", false},
	{"[log]", "log", "", false},
}

// fileWith returns the base file for key with key set to value (a TOML
// value); with value "" the key is not written (the base to compare with).
func fileWith(t *testing.T, key, value string) string {
	t.Helper()
	best := -1
	for i, s := range baseSections {
		holds := strings.HasPrefix(key, s.table+".") || s.table == "" && key != "" && !strings.Contains(key, ".")
		if holds && (best < 0 || len(s.table) > len(baseSections[best].table)) {
			best = i
		}
	}
	if key != "" && best < 0 {
		t.Fatalf("no section of the base file holds %s", key)
	}
	withUplink := best >= 0 && baseSections[best].only
	var b strings.Builder
	for i, s := range baseSections {
		if s.only && i != best {
			continue
		}
		if s.header != "" {
			b.WriteString(s.header + "\n")
		}
		if s.table == "node" && withUplink {
			b.WriteString("uplinks = [\"eth0\"]\n")
		}
		rest := strings.TrimPrefix(key, s.table+".")
		if s.table == "" {
			rest = key
		}
		for _, line := range strings.Split(s.body, "\n") {
			if i != best || value == "" || !strings.HasPrefix(line, rest+" = ") { // the key replaces the base's value
				b.WriteString(line + "\n")
			}
		}
		if i == best && value != "" {
			b.WriteString(rest + " = " + value + "\n")
		}
	}
	return b.String()
}

// leadingSpan matches a cell that is one code span, optionally followed by
// a remark in parentheses: "`\"9s\"`", "`[]` (any source)".
var leadingSpan = regexp.MustCompile("^`([^`]+)`( \\(.*\\))?$")

// resolvedAtUse are keys whose documented default is what their absence
// means where they are used, not a value the parser fills in.
var resolvedAtUse = map[string]string{
	"datapath.tunnel-sources": `absent means ["on-link"] when the daemon applies it (resolveTunnelSources, TestResolveTunnelSources)`,
}

// TestDocumentedDefaults: every default docs/configuration.md writes as a
// value is the default: writing it in the file changes nothing.
func TestDocumentedDefaults(t *testing.T) {
	rows := referenceRows(t)
	n := 0
	for _, r := range rows {
		m := leadingSpan.FindStringSubmatch(r.Cells["default"])
		if m == nil {
			continue
		}
		if _, isKey := ConfigKey(m[1]); isKey {
			continue // "`node.router-id`": another key's value
		}
		if why, ok := resolvedAtUse[r.Key]; ok {
			t.Logf("%s: %s", r.Key, why)
			continue
		}
		n++
		base := parseNormalized(t, "base.toml", fileWith(t, r.Key, ""))
		src := fileWith(t, r.Key, m[1])
		cfg, err := config.Parse("default.toml", []byte(src))
		if err != nil {
			t.Errorf("docs/configuration.md:%d: %s's default `%s` is not a valid value: %v", r.Line, r.Key, m[1], err)
			continue
		}
		if got := normalize(t, cfg); !reflect.DeepEqual(got, base) {
			t.Errorf("docs/configuration.md:%d: %s's default is not `%s`: writing it changes the configuration", r.Line, r.Key, m[1])
		}
	}
	if n < 40 {
		t.Errorf("only %d documented defaults found: is the reader broken?", n)
	}
}

func parseNormalized(t *testing.T, name, src string) any {
	t.Helper()
	cfg, err := config.Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, src)
	}
	return normalize(t, cfg)
}

// normalize is the configuration as JSON values, with an empty array and
// no array alike (`uplinks = []` is the default, not a change).
func normalize(t *testing.T, cfg *config.Config) any {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return dropEmpty(v)
}

func dropEmpty(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e = dropEmpty(e); e == nil {
				delete(v, k)
			} else {
				v[k] = e
			}
		}
		return v
	case []any:
		if len(v) == 0 {
			return nil
		}
		for i := range v {
			v[i] = dropEmpty(v[i])
		}
		return v
	}
	return v
}
