package doccheck

import (
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// tomlBlocks returns the ```toml blocks of a document with the line each
// starts on.
func tomlBlocks(text string) (blocks []string, lines []int) {
	var cur []string
	in := false
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && trimmed == "```toml":
			in, cur = true, nil
			lines = append(lines, i+2)
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return blocks, lines
}

// keyPaths lists the dotted paths (without indices) of every key in a
// decoded TOML tree.
func keyPaths(prefix string, v any, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p] = true
			keyPaths(p, e, out)
		}
	case []map[string]any:
		for _, e := range v {
			keyPaths(prefix, e, out)
		}
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				keyPaths(prefix, m, out)
			}
		}
	}
}

// TestDocsTOMLBlocks: every ```toml example of the documents is valid TOML
// and uses only keys of the schema.
func TestDocsTOMLBlocks(t *testing.T) {
	keys := Keys()
	n := 0
	eachDocument(t, func(f, text string) {
		blocks, lines := tomlBlocks(text)
		for i, block := range blocks {
			n++
			var tree map[string]any
			if _, err := toml.Decode(block, &tree); err != nil {
				t.Errorf("%s:%d: the TOML example does not parse: %v", f, lines[i], err)
				continue
			}
			paths := map[string]bool{}
			keyPaths("", tree, paths)
			var unknown []string
			for p := range paths {
				if _, ok := keys[p]; !ok {
					unknown = append(unknown, p)
				}
			}
			sort.Strings(unknown)
			for _, p := range unknown {
				t.Errorf("%s:%d: the TOML example sets %s, which is not a configuration key", f, lines[i], p)
			}
		}
	})
	t.Logf("%d TOML examples", n)
}
