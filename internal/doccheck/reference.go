package doccheck

import (
	"regexp"
	"strings"
)

// DocumentedKey is a row of a key table in docs/configuration.md.
type DocumentedKey struct {
	Key  string // dotted path without indices
	Line int
	// Cells are the row's cells by the table's column names ("type",
	// "default", "allowed", …); nil for a table header.
	Cells map[string]string
}

var (
	tableIntro = regexp.MustCompile("^(#+ )?`(\\[\\[?[a-z0-9.-]+\\]\\]?)`( —|$)")
	keyCell    = regexp.MustCompile("^\\| `([a-z0-9-]+)` \\|")
	cellSep    = regexp.MustCompile(`([^\\])\|`)
	// topIntro starts the table of keys outside every table (include).
	topIntro = regexp.MustCompile("^#+ Top-level keys")
)

// topLevel is the section of keys outside every table.
const topLevel = "."

// ReferenceTables reads the configuration reference: every table of keys
// follows a heading or paragraph that starts with the table's header
// ("## `[node]`", "`[bgp.peers.import]` — …"); its rows start with the key.
// tables lists the table headers met.
func ReferenceTables(text string) (keys []DocumentedKey, tables []DocumentedKey) {
	section := ""
	var columns []string
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			section = "" // a heading without a table header ends the section
		}
		if topIntro.MatchString(line) {
			section = topLevel
			continue
		}
		if m := tableIntro.FindStringSubmatch(line); m != nil {
			if k, ok := ConfigKey(m[2]); ok {
				section = k
				tables = append(tables, DocumentedKey{Key: k, Line: i + 1})
			}
			continue
		}
		if strings.HasPrefix(line, "| key |") {
			columns = splitRow(line)
			continue
		}
		if m := keyCell.FindStringSubmatch(line); m != nil && section != "" {
			cells := map[string]string{}
			for j, c := range splitRow(line) {
				if j < len(columns) {
					cells[columns[j]] = c
				}
			}
			key := section + "." + m[1]
			if section == topLevel {
				key = m[1]
			}
			keys = append(keys, DocumentedKey{Key: key, Line: i + 1, Cells: cells})
		}
	}
	return keys, tables
}

// splitRow cuts a Markdown table row into its trimmed cells; `\|` does not
// separate cells.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	marked := cellSep.ReplaceAllString(" "+line, "$1\x00")
	var cells []string
	for _, c := range strings.Split(marked[1:], "\x00") {
		cells = append(cells, strings.TrimSpace(strings.ReplaceAll(c, `\|`, "|")))
	}
	return cells
}
