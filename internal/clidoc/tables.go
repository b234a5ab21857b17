package clidoc

import (
	"strings"
)

// tablesToLists rewrites markdown tables as definition lists: a table as
// wide as the configuration reference's does not fit a terminal, while
// "key" followed by an indented paragraph is how man pages list options.
// The first column is the term; the other cells follow as "header: cell",
// after the description (the "meaning" column, else the widest).
func tablesToLists(md string) string {
	lines := strings.Split(md, "\n")
	var out []string
	inCode := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inCode = !inCode
		}
		if inCode || !isTableRow(l) || i+1 >= len(lines) || !isSeparator(lines[i+1]) {
			out = append(out, l)
			continue
		}
		header := cells(l)
		i += 2
		var rows [][]string
		for ; i < len(lines) && isTableRow(lines[i]); i++ {
			rows = append(rows, cells(lines[i]))
		}
		i--
		out = append(out, definitionList(header, rows)...)
	}
	return strings.Join(out, "\n")
}

func isTableRow(l string) bool {
	l = strings.TrimSpace(l)
	return strings.HasPrefix(l, "|") && strings.HasSuffix(l, "|") && len(l) > 1
}

func isSeparator(l string) bool {
	if !isTableRow(l) {
		return false
	}
	return strings.Trim(strings.TrimSpace(l), "|-: ") == ""
}

// cells splits a row on the pipes that are not escaped (\|).
func cells(l string) []string {
	l = strings.TrimSpace(l)
	l = strings.TrimSuffix(strings.TrimPrefix(l, "|"), "|")
	var cs []string
	var cur strings.Builder
	for i := 0; i < len(l); i++ {
		switch {
		case l[i] == '\\' && i+1 < len(l) && l[i+1] == '|':
			cur.WriteByte('|')
			i++
		case l[i] == '|':
			cs = append(cs, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(l[i])
		}
	}
	return append(cs, strings.TrimSpace(cur.String()))
}

func definitionList(header []string, rows [][]string) []string {
	// The description comes first: the "meaning" column, else the widest.
	widest, size := -1, 0
	for c := 1; c < len(header); c++ {
		if strings.EqualFold(header[c], "meaning") {
			widest, size = c, 1<<30
		}
		if size == 1<<30 {
			break
		}
		n := 0
		for _, r := range rows {
			if c < len(r) {
				n += len(r[c])
			}
		}
		if n > size {
			widest, size = c, n
		}
	}
	var out []string
	for _, r := range rows {
		if len(r) == 0 {
			continue
		}
		var parts []string
		if widest > 0 && widest < len(r) && r[widest] != "" {
			parts = append(parts, r[widest])
		}
		for c := 1; c < len(r) && c < len(header); c++ {
			if c == widest || r[c] == "" {
				continue
			}
			parts = append(parts, "*"+header[c]+"*: "+r[c])
		}
		term := r[0]
		if !strings.Contains(term, "**") {
			term = "**" + term + "**"
		}
		out = append(out, term, ": "+strings.Join(parts, "; "), "")
	}
	return out
}
