package config

import (
	"fmt"
	"strconv"
	"strings"
)

// checkShape is the first pass over a file, before the TOML parser: one
// linear scan that enforces MaxDepth, MaxKeyLen, MaxItems and MaxScalars. The parser's
// time and memory grow with the square of the nesting (a 20 KB file of
// nested inline tables takes it gigabytes), and every later pass is linear
// in the items of a file once these are bounded.
//
// It follows the grammar of the TOML lexer (comments, the four string
// forms, [table] and [[array]] headers, dotted keys, arrays, inline tables)
// without validating it, and stops at the first text the grammar does not
// allow. The parser fails there or earlier, so everything the parser reads
// has been checked; FuzzParse checks that it never stops on a file the
// parser accepts. It returns nil when the file is within the limits (or
// has a syntax error the parser will report).
func checkShape(name string, src []byte) *Error {
	s := scanShape(src)
	if s.err != nil {
		s.err.File = name
	}
	return s.err
}

// scanShape runs checkShape's scan and returns the scanner: its error,
// whether it stopped, and the headers it found.
func scanShape(src []byte) *shapeScanner {
	s := &shapeScanner{src: src, line: 1, resumed: -1}
	s.document()
	return s
}

type shapeScanner struct {
	src       []byte
	i         int
	line      int
	lineStart int
	items     int
	scalars   int
	stack     []shapeLevel // from the top of the file to the current value
	stopped   bool         // at an error: a limit, or text TOML does not allow
	err       *Error
	headers   []shapeHeader // the table headers, in file order
	// until, when set, ends the scan before a header it accepts the
	// position of (resumed is then that position, else -1): a rescan
	// of a changed part of a file (chunked.rescan).
	until   func(at int) bool
	resumed int
}

// shapeHeader is one [table] or [[array]] header of a file: where its
// line's text starts, whether it is an array's, its first key (unquoted)
// and how many keys it has, and the items and scalars the scan counted
// before it. splitServices cuts a file at these.
type shapeHeader struct {
	at             int
	array          bool
	first          string
	keys           int
	items, scalars int
}

// shapeLevel is one level of nesting: a key name, an array (index is the
// element being read) or an inline table.
type shapeLevel struct {
	kind       byte // 'k' key, '[' array, '{' inline table
	start, end int  // a key's bytes, quotes included
	index      int
}

func (s *shapeScanner) eof() bool { return s.stopped || s.i >= len(s.src) }

func (s *shapeScanner) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

func (s *shapeScanner) advance() {
	if s.src[s.i] == '\n' {
		s.line++
		s.lineStart = s.i + 1
	}
	s.i++
}

// stop ends the scan at text the grammar does not allow; the parser
// reports it.
func (s *shapeScanner) stop() { s.stopped = true }

// fail ends the scan at a broken limit.
func (s *shapeScanner) fail(at Pos, format string, args ...any) {
	if s.stopped {
		return
	}
	s.stopped = true
	s.err = &Error{Line: at.Line, Col: at.Col, Key: s.path(), Msg: fmt.Sprintf(format, args...)}
}

func (s *shapeScanner) here() Pos { return Pos{Line: s.line, Col: s.i - s.lineStart + 1} }

func (s *shapeScanner) push(l shapeLevel, at Pos) {
	s.stack = append(s.stack, l)
	if len(s.stack) > MaxDepth {
		s.fail(at, "nested more than %d levels deep (key names, arrays and inline tables; aird's deepest key needs 9)", MaxDepth)
	}
}

func (s *shapeScanner) item(at Pos) {
	s.items++
	if s.items > MaxItems {
		s.fail(at, "more than %d key names and array elements; the limit is %d", MaxItems, MaxItems)
	}
}

// element counts one array element: an array or inline table as an item,
// anything else against MaxScalars.
func (s *shapeScanner) element(at Pos) {
	if c := s.peek(0); c == '[' || c == '{' {
		s.item(at)
		return
	}
	s.scalars++
	if s.scalars > MaxScalars {
		s.fail(at, "more than %d plain array elements (strings, numbers, booleans, dates); the limit is %d", MaxScalars, MaxScalars)
	}
}

// path renders the stack as a key path, as far as the scan got: array
// elements by index, arrays of tables ([[x]]) without one.
func (s *shapeScanner) path() string {
	var b strings.Builder
	for _, l := range s.stack {
		switch l.kind {
		case 'k':
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(keyName(string(s.src[l.start:l.end])))
		case '[':
			b.WriteString("[" + strconv.Itoa(l.index) + "]")
		}
	}
	return b.String()
}

// keyName is a key as written, without its quotes.
func keyName(raw string) string {
	if len(raw) >= 2 && raw[0] == '"' {
		return unescapeKey(raw[1 : len(raw)-1])
	}
	if len(raw) >= 2 && raw[0] == '\'' {
		return raw[1 : len(raw)-1]
	}
	return raw
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }
func isEOL(c byte) bool   { return c == '\n' || c == '\r' }

func (s *shapeScanner) skipBlanks() {
	for !s.eof() && isBlank(s.src[s.i]) {
		s.advance()
	}
}

// skipAll skips blanks, newlines and comments.
func (s *shapeScanner) skipAll() {
	for !s.eof() {
		switch c := s.src[s.i]; {
		case isBlank(c) || isEOL(c):
			s.advance()
		case c == '#':
			s.comment()
		default:
			return
		}
	}
}

func (s *shapeScanner) comment() {
	for !s.eof() && !isEOL(s.src[s.i]) {
		s.advance()
	}
}

func (s *shapeScanner) document() {
	for {
		s.skipAll()
		if s.eof() {
			return
		}
		if s.src[s.i] == '[' {
			if s.until != nil && s.until(s.i) {
				s.resumed = s.i
				return
			}
			s.header() // the levels of the lines below
		} else {
			s.keyValue()
		}
		s.lineEnd()
	}
}

// lineEnd expects the end of a top-level line: blanks, a comment, then a
// newline or the end of the file.
func (s *shapeScanner) lineEnd() {
	s.skipBlanks()
	if !s.eof() && s.src[s.i] == '#' {
		s.comment()
	}
	if !s.eof() && !isEOL(s.src[s.i]) {
		s.stop()
	}
}

// header reads [a.b] or [[a.b]]: the keys of the lines below start there.
func (s *shapeScanner) header() {
	at, items, scalars := s.i, s.items, s.scalars
	s.advance()
	array := s.peek(0) == '['
	if array {
		s.advance()
	}
	s.stack = s.stack[:0]
	s.key()
	if len(s.stack) > 0 {
		first := s.stack[0]
		s.headers = append(s.headers, shapeHeader{at: at, array: array, first: keyName(string(s.src[first.start:first.end])),
			keys: len(s.stack), items: items, scalars: scalars})
	}
	s.skipBlanks()
	if s.eof() || s.src[s.i] != ']' {
		s.stop()
		return
	}
	s.advance()
	if array {
		if s.peek(0) != ']' {
			s.stop()
			return
		}
		s.advance()
	}
}

// keyValue reads "key = value"; the key's levels last as long as the value.
func (s *shapeScanner) keyValue() {
	base := len(s.stack)
	s.key()
	s.skipBlanks()
	if s.eof() || s.src[s.i] != '=' {
		s.stop()
		return
	}
	s.advance()
	s.value()
	s.stack = s.stack[:base]
}

// key reads a dotted key and pushes a level for each of its parts.
func (s *shapeScanner) key() {
	for !s.eof() {
		s.skipBlanks()
		if s.eof() {
			s.stop()
			return
		}
		at, start := s.here(), s.i
		switch s.src[s.i] {
		case '"':
			s.basicString()
		case '\'':
			s.literalString()
		default:
			for !s.eof() && isBare(s.src[s.i]) {
				s.advance()
			}
			if s.i == start {
				s.stop()
				return
			}
		}
		if s.stopped {
			return
		}
		s.push(shapeLevel{kind: 'k', start: start, end: s.i}, at)
		s.item(at)
		if n := len(keyName(string(s.src[start:s.i]))); n > MaxKeyLen && !s.stopped {
			s.fail(at, "a key name of %d bytes; key names are at most %d bytes", n, MaxKeyLen)
		}
		s.skipBlanks()
		if s.peek(0) != '.' || s.eof() {
			return
		}
		s.advance()
	}
}

func (s *shapeScanner) value() {
	s.skipBlanks()
	if s.eof() {
		s.stop()
		return
	}
	switch s.src[s.i] {
	case '[':
		s.array()
	case '{':
		s.inlineTable()
	case '"':
		if s.peek(1) == '"' && s.peek(2) == '"' {
			s.multiLineString('"')
		} else {
			s.basicString()
		}
	case '\'':
		if s.peek(1) == '\'' && s.peek(2) == '\'' {
			s.multiLineString('\'')
		} else {
			s.literalString()
		}
	default:
		// A number, date, boolean, inf or nan: the parser checks which.
		start := s.i
		for !s.eof() && !strings.ContainsRune(",]}#[{\"'=\n\r", rune(s.src[s.i])) {
			s.advance()
		}
		if s.i == start {
			s.stop()
		}
	}
}

func (s *shapeScanner) array() {
	s.push(shapeLevel{kind: '['}, s.here())
	s.advance()
	level := len(s.stack) - 1
	for !s.eof() {
		s.skipAll()
		if s.eof() {
			break
		}
		if s.src[s.i] == ']' {
			s.advance()
			s.stack = s.stack[:level]
			return
		}
		s.element(s.here())
		s.value()
		s.stack[level].index++
		s.skipAll()
		switch {
		case s.eof():
		case s.src[s.i] == ',':
			s.advance()
		case s.src[s.i] == ']':
			s.advance()
			s.stack = s.stack[:level]
			return
		default:
			s.stop()
		}
	}
	s.stop()
}

func (s *shapeScanner) inlineTable() {
	s.push(shapeLevel{kind: '{'}, s.here())
	s.advance()
	level := len(s.stack)
	for !s.eof() {
		s.skipAll()
		if s.eof() {
			break
		}
		if s.src[s.i] == '}' {
			s.advance()
			s.stack = s.stack[:level-1]
			return
		}
		s.keyValue()
		s.skipAll()
		switch {
		case s.eof():
		case s.src[s.i] == ',':
			s.advance()
		case s.src[s.i] == '}':
			s.advance()
			s.stack = s.stack[:level-1]
			return
		default:
			s.stop()
		}
	}
	s.stop()
}

// basicString skips a "string" on one line, escapes included.
func (s *shapeScanner) basicString() {
	s.advance()
	for !s.eof() {
		switch c := s.src[s.i]; {
		case c == '"':
			s.advance()
			return
		case isEOL(c):
			s.stop()
			return
		case c == '\\':
			s.advance()
			if !s.eof() && !isEOL(s.src[s.i]) {
				s.advance()
			}
		default:
			s.advance()
		}
	}
	s.stop()
}

// literalString skips a 'string' on one line.
func (s *shapeScanner) literalString() {
	s.advance()
	for !s.eof() {
		switch c := s.src[s.i]; {
		case c == '\'':
			s.advance()
			return
		case isEOL(c):
			s.stop()
			return
		default:
			s.advance()
		}
	}
	s.stop()
}

// multiLineString skips a """string""" or ”'string”'. It ends where the
// TOML lexer ends it: the first three quotes not followed by a fourth; up to
// two more quotes before them belong to the string, and six in a row are an
// error (unless the first is escaped).
func (s *shapeScanner) multiLineString(q byte) {
	s.advance()
	s.advance()
	s.advance()
	content := s.i
	for !s.eof() {
		c := s.src[s.i]
		if c == '\\' && q == '"' {
			s.advance()
			if !s.eof() {
				s.advance()
			}
			continue
		}
		if c != q || s.peek(1) != q || s.peek(2) != q {
			s.advance()
			continue
		}
		if s.peek(3) != q {
			s.advance()
			s.advance()
			s.advance()
			return
		}
		// Three quotes and a fourth: the lexer takes one quote into the
		// string, unless the string already ends in two and these make six.
		if s.i-2 >= content && s.src[s.i-1] == q && s.src[s.i-2] == q &&
			!(q == '"' && s.i-3 >= content && s.src[s.i-3] == '\\') {
			s.stop()
			return
		}
		s.advance()
	}
	s.stop()
}
