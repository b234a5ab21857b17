package config

import (
	"strconv"
	"strings"
)

// Pos is a 1-based line and column in a configuration file.
type Pos struct{ Line, Col int }

// positions maps a key path ("services[2].backends[0].address",
// "node.uplinks[1]") to where it is written. It is built by scanning the
// source once; the source has already been accepted by the TOML parser, so
// the scanner only needs to follow structure, not to validate it.
type positions map[string]Pos

// lookup returns the position of path, or of the closest enclosing key or
// table written in the file when path itself is not (a defaulted key).
func (p positions) lookup(path string) Pos {
	for path != "" {
		if pos, ok := p[path]; ok {
			return pos
		}
		path = parentPath(path)
	}
	return Pos{}
}

// parentPath strips the last ".key" or "[n]" from a key path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

type scanner struct {
	src       []byte
	i         int
	line      int
	lineStart int
	table     string         // resolved path of the current [table]
	arrays    map[string]int // resolved array-of-tables path -> elements seen
	pos       positions
}

func scanPositions(src []byte) positions {
	s := &scanner{src: src, line: 1, arrays: map[string]int{}, pos: positions{}}
	s.document()
	return s.pos
}

func (s *scanner) here() Pos { return Pos{Line: s.line, Col: s.i - s.lineStart + 1} }

func (s *scanner) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

func (s *scanner) advance() {
	if s.src[s.i] == '\n' {
		s.line++
		s.lineStart = s.i + 1
	}
	s.i++
}

func (s *scanner) record(path string, p Pos) {
	if _, ok := s.pos[path]; !ok {
		s.pos[path] = p
	}
}

// skipSpace skips blanks, and newlines and comments too when newlines is set.
func (s *scanner) skipSpace(newlines bool) {
	for s.i < len(s.src) {
		switch c := s.src[s.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.advance()
		case c == '\n' && newlines:
			s.advance()
		case c == '#':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.advance()
			}
		default:
			return
		}
	}
}

func (s *scanner) document() {
	for {
		s.skipSpace(true)
		if s.i >= len(s.src) {
			return
		}
		if s.src[s.i] == '[' {
			s.header()
		} else {
			s.keyValue(s.table)
		}
	}
}

func (s *scanner) header() {
	at := s.here()
	array := s.peek(1) == '['
	s.advance()
	if array {
		s.advance()
	}
	s.skipSpace(false)
	keys := s.key()
	for s.i < len(s.src) && s.src[s.i] != '\n' && s.src[s.i] != '#' {
		s.advance() // the closing ] or ]]
	}
	path := ""
	for n, k := range keys {
		path = joinPath(path, k)
		last := n == len(keys)-1
		if last && array {
			idx := s.arrays[path]
			s.arrays[path] = idx + 1
			s.record(path, at)
			path = indexPath(path, idx)
		} else if c, ok := s.arrays[path]; ok && !last {
			path = indexPath(path, c-1)
		} else if !last {
			s.record(path, at) // a table made implicitly by [a.b]
		}
	}
	s.record(path, at)
	s.table = path
}

// key reads a dotted key and returns its segments.
func (s *scanner) key() []string {
	var segs []string
	for s.i < len(s.src) {
		s.skipSpace(false)
		segs = append(segs, s.keySegment())
		s.skipSpace(false)
		if s.peek(0) != '.' {
			return segs
		}
		s.advance()
	}
	return segs
}

func (s *scanner) keySegment() string {
	switch s.peek(0) {
	case '"', '\'':
		start := s.i
		s.str()
		raw := string(s.src[start:s.i])
		if len(raw) < 2 {
			return raw
		}
		if raw[0] == '"' {
			return unescapeKey(raw[1 : len(raw)-1])
		}
		return raw[1 : len(raw)-1]
	}
	start := s.i
	for s.i < len(s.src) && isBare(s.src[s.i]) {
		s.advance()
	}
	return string(s.src[start:s.i])
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func (s *scanner) keyValue(table string) {
	at := s.here()
	segs := s.key()
	path := table
	for _, k := range segs {
		path = joinPath(path, k)
		s.record(path, at)
	}
	s.skipSpace(false)
	if s.peek(0) == '=' {
		s.advance()
	}
	s.skipSpace(false)
	s.value(path)
}

func (s *scanner) value(path string) {
	switch s.peek(0) {
	case '"', '\'':
		s.str()
	case '[':
		s.array(path)
	case '{':
		s.inlineTable(path)
	default:
		for s.i < len(s.src) && !strings.ContainsRune(",]}\n#", rune(s.src[s.i])) {
			s.advance()
		}
	}
}

func (s *scanner) array(path string) {
	s.advance() // [
	for n := 0; s.i < len(s.src); n++ {
		s.skipSpace(true)
		if s.peek(0) == ']' {
			s.advance()
			return
		}
		elem := indexPath(path, n)
		s.record(elem, s.here())
		s.value(elem)
		s.skipSpace(true)
		if s.peek(0) == ',' {
			s.advance()
		}
	}
}

func (s *scanner) inlineTable(path string) {
	s.advance() // {
	for s.i < len(s.src) {
		s.skipSpace(true)
		switch s.peek(0) {
		case '}':
			s.advance()
			return
		case ',':
			s.advance()
			continue
		}
		before := s.i
		s.keyValue(path)
		if s.i == before { // not a key: step over it rather than loop
			s.advance()
		}
	}
}

// str skips one basic, literal or multi-line string.
func (s *scanner) str() {
	q := s.src[s.i]
	multi := s.peek(1) == q && s.peek(2) == q
	if multi {
		s.advance()
		s.advance()
	}
	s.advance()
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == '\\' && q == '"':
			s.advance()
			if s.i < len(s.src) {
				s.advance()
			}
			continue
		case c == q && !multi:
			s.advance()
			return
		case c == q && s.peek(1) == q && s.peek(2) == q:
			s.advance()
			s.advance()
			s.advance()
			for s.peek(0) == q { // up to two quotes may close a multi-line string
				s.advance()
			}
			return
		case c == '\n' && !multi:
			return
		}
		s.advance()
	}
}

// unescapeKey resolves the escapes of a TOML basic string (the parser has
// accepted them): \b \t \n \f \r \e \" \\ \xHH \uXXXX \UXXXXXXXX.
func unescapeKey(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		digits := 0
		switch s[i] {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case 'x':
			digits = 2
		case 'u':
			digits = 4
		case 'U':
			digits = 8
		default: // \" and \\
			b.WriteByte(s[i])
		}
		if digits > 0 && i+digits < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+1+digits], 16, 32); err == nil {
				b.WriteRune(rune(n))
			}
			i += digits
		}
	}
	return b.String()
}
