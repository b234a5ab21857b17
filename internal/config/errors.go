package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a configuration file. Line and Col are
// 1-based; zero means the position is unknown (for example a required key
// that is missing from its table, reported at the table when it is known).
type Error struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"column"`
	Key  string `json:"key,omitempty"`
	Msg  string `json:"message"`
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in file order. It is returned
// as the error of Load and Parse whenever the file is not valid.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
	return es
}

// reporter collects errors for one file, resolving key paths to positions.
type reporter struct {
	file     string
	pos      positions
	errs     Errors
	shadowed map[string]bool // key paths whose semantic errors are dropped
}

// shadow suppresses later semantic errors about path and the keys below it.
func (r *reporter) shadow(path string) {
	if r.shadowed == nil {
		r.shadowed = map[string]bool{}
	}
	r.shadowed[path] = true
}

// failed reports whether path (or a key enclosing it) failed to decode, so
// its value is a default rather than what the file says.
func (r *reporter) failed(path string) bool { return isShadowed(r.shadowed, path) }

// at records an error for the key path, positioned where the key (or the
// nearest enclosing table that is written in the file) appears.
func (r *reporter) at(path, format string, args ...any) {
	p := r.pos.lookup(path)
	r.errs = append(r.errs, &Error{File: r.file, Line: p.Line, Col: p.Col, Key: path, Msg: fmt.Sprintf(format, args...)})
}

func (r *reporter) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return r.errs.sorted()
}
