package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var (
	exampleHeader = regexp.MustCompile(`^\[\[?([a-z0-9.-]+)\]\]?$`)
	exampleKey    = regexp.MustCompile(`^([a-z0-9-]+(\.[a-z0-9-]+)*) = (.*)$`)
	inlineKey     = regexp.MustCompile(`([a-z0-9-]+) = `)
)

// exampleKeys are the keys a commented example names, set or commented
// out ("# pin-path = …"), as dotted paths without indices; the keys of an
// inline table one level deep.
func exampleKeys(text string) map[string]bool {
	out := map[string]bool{}
	table := ""
	for _, line := range strings.Split(text, "\n") {
		l := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if m := exampleHeader.FindStringSubmatch(l); m != nil {
			table = m[1]
			out[table] = true
			continue
		}
		m := exampleKey.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		path := m[1]
		if table != "" {
			path = table + "." + m[1]
		}
		for p := path; ; {
			out[p] = true
			i := strings.LastIndex(p, ".")
			if i < 0 || p[:i] == table {
				break
			}
			p = p[:i]
		}
		if strings.HasPrefix(m[3], "{") || strings.Contains(m[3], "[{") {
			for _, k := range inlineKey.FindAllStringSubmatch(m[3], -1) {
				out[path+"."+k[1]] = true
			}
		}
	}
	return out
}

// TestExampleNamesEveryKey: configs/aird.toml, "a complete, commented
// example" (docs/configuration.md), names every key of the schema.
func TestExampleNamesEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "configs", "aird.toml"))
	if err != nil {
		t.Fatal(err)
	}
	named := exampleKeys(string(b))
	var missing []string
	for k := range Keys() {
		if !named[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		t.Errorf("configs/aird.toml does not name %s (set it, or show its default commented out)", k)
	}
}
