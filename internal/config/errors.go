package config

import (
	"container/heap"
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

// reporter collects errors for one file, resolving key paths to positions.
// It keeps the first MaxErrors in file order and counts the others, so a
// file with an error on every line costs no more memory than one with
// MaxErrors of them.
type reporter struct {
	file string
	pos  positions
	// fast is the first pass over a file, without positions: the first
	// problem sets bad and nothing is recorded (the file is then checked
	// again with positions). raw is the parser's tree, which tells that
	// pass which keys the file writes.
	fast     bool
	bad      bool
	raw      map[string]any
	kept     errorHeap
	seq      int             // errors reported so far, shadowed ones excepted
	more     int             // errors beyond the kept ones
	first    *Error          // the earliest of those
	checking bool            // decoding is over: the semantic checks run
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
// nearest enclosing table that is written in the file) appears. While
// decoding, the key is shadowed: its value is unknown, so later checks of
// it would mislead; once checking, an error about a shadowed key is
// dropped.
func (r *reporter) at(path, format string, args ...any) {
	if r.fast {
		r.bad = true
		return
	}
	if !r.checking {
		r.shadow(path)
	} else if r.failed(path) {
		return
	}
	p := r.pos.lookup(path)
	r.add(&Error{File: r.file, Line: p.Line, Col: p.Col, Key: path, Msg: fmt.Sprintf(format, args...)})
}

// written reports whether the file writes the key path.
func (r *reporter) written(path string) bool {
	if r.fast {
		return rawWritten(r.raw, path)
	}
	return r.pos.written(path)
}

func (r *reporter) add(e *Error) {
	r.seq++
	item := seqError{e, r.seq}
	if len(r.kept) < MaxErrors {
		heap.Push(&r.kept, item)
		return
	}
	if r.kept[0].after(item) { // e comes before the last kept error
		item, r.kept[0] = r.kept[0], item
		heap.Fix(&r.kept, 0)
	}
	r.more++
	if r.first == nil || before(item.Error, r.first) {
		r.first = item.Error
	}
}

func (r *reporter) err() error {
	if len(r.kept) == 0 {
		return nil
	}
	sort.Slice(r.kept, func(i, j int) bool { return r.kept[j].after(r.kept[i]) })
	out := make(Errors, 0, len(r.kept)+1)
	for _, e := range r.kept {
		out = append(out, e.Error)
	}
	if r.more > 0 {
		out = append(out, &Error{File: r.file, Line: r.first.Line, Col: r.first.Col,
			Msg: fmt.Sprintf("%d more errors from here on are not listed (at most %d are)", r.more, MaxErrors)})
	}
	return out
}

func before(a, b *Error) bool { return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col }

// seqError is an error and the order it was reported in, which breaks ties
// between errors at one position.
type seqError struct {
	*Error
	seq int
}

func (a seqError) after(b seqError) bool {
	return before(b.Error, a.Error) || !before(a.Error, b.Error) && a.seq > b.seq
}

// errorHeap has the latest error (in file order) on top.
type errorHeap []seqError

func (h errorHeap) Len() int           { return len(h) }
func (h errorHeap) Less(i, j int) bool { return h[i].after(h[j]) }
func (h errorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *errorHeap) Push(x any)        { *h = append(*h, x.(seqError)) }
func (h *errorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
