package doccheck

import (
	"regexp"
	"strings"
)

// DocumentedKey is a row of a key table in docs/configuration.md.
type DocumentedKey struct {
	Key  string // dotted path without indices
	Line int
}

var (
	tableIntro = regexp.MustCompile("^(#+ )?`(\\[\\[?[a-z0-9.-]+\\]\\]?)`( —|$)")
	keyCell    = regexp.MustCompile("^\\| `([a-z0-9-]+)` \\|")
)

// ReferenceTables reads the configuration reference: every table of keys
// follows a heading or paragraph that starts with the table's header
// ("## `[node]`", "`[bgp.peers.import]` — …"); its rows start with the key.
// tables lists the table headers met.
func ReferenceTables(text string) (keys []DocumentedKey, tables []DocumentedKey) {
	section := ""
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			section = "" // a heading without a table header ends the section
		}
		if m := tableIntro.FindStringSubmatch(line); m != nil {
			if k, ok := ConfigKey(m[2]); ok {
				section = k
				tables = append(tables, DocumentedKey{k, i + 1})
			}
			continue
		}
		if m := keyCell.FindStringSubmatch(line); m != nil && section != "" {
			keys = append(keys, DocumentedKey{section + "." + m[1], i + 1})
		}
	}
	return keys, tables
}
