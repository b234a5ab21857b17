package config

import (
	"strconv"
	"strings"
)

// Pos is a 1-based line and column in a configuration file.
type Pos struct{ Line, Col int }

// positions records where every key and array element of a file is
// written, as a tree that mirrors the file: one node per key or element,
// each edge holding only its own name, so that building it is linear in the
// size of the file however deep its keys are. It is built by scanning the
// source once; the source has already been accepted by the TOML parser, so
// the scanner only needs to follow structure, not to validate it.
type positions struct {
	nodes []posNode          // nodes[0] is the top of the file
	edges map[posEdge]uint32 // child by parent and key name
	// elems[nodes[n].list-1] are the element nodes of array n by index
	// (noNode where the file has none): a file's arrays can hold millions
	// of elements, which a slice per array indexes at a fraction of the
	// cost of a map entry per element.
	elems [][]uint32
}

const noNode = ^uint32(0)

// posNode is one key, table or array element of the file.
type posNode struct {
	line, col int32
	elems     int32 // array elements seen
	list      int32 // its element list, elems[list-1]; 0: none yet
	aot       bool  // an array of tables ([[x]]): headers below it go to its last element
}

// posEdge names a child by its key name.
type posEdge struct {
	parent uint32
	key    string
}

const posRoot = 0

// newPositions returns an empty index with room for the nodes of a file
// of size bytes (a key or element takes a dozen bytes or more).
func newPositions(size int) *positions {
	nodes := make([]posNode, 1, 1+size/16)
	return &positions{nodes: nodes, edges: map[posEdge]uint32{}}
}

func (p *positions) add(e posEdge, at Pos) uint32 {
	n := p.node(at)
	p.edges[e] = n
	return n
}

func (p *positions) node(at Pos) uint32 {
	n := uint32(len(p.nodes))
	p.nodes = append(p.nodes, posNode{line: int32(at.Line), col: int32(at.Col)})
	return n
}

// key returns the child of n named k, made (at at) if it is new.
func (p *positions) key(n uint32, k string, at Pos) uint32 {
	e := posEdge{parent: n, key: k}
	if c, ok := p.edges[e]; ok {
		return c
	}
	return p.add(e, at)
}

// elem returns element i of n, made (at at) if it is new.
func (p *positions) elem(n uint32, i int, at Pos) uint32 {
	if c, ok := p.elemAt(n, i); ok {
		return c
	}
	if p.nodes[n].list == 0 {
		p.elems = append(p.elems, nil)
		p.nodes[n].list = int32(len(p.elems))
	}
	if int32(i) >= p.nodes[n].elems {
		p.nodes[n].elems = int32(i) + 1
	}
	l := p.nodes[n].list - 1
	c := p.node(at)
	for len(p.elems[l]) <= i {
		p.elems[l] = append(p.elems[l], noNode)
	}
	p.elems[l][i] = c
	return c
}

// elemAt returns element i of n, if the file has it.
func (p positions) elemAt(n uint32, i int) (uint32, bool) {
	l := p.nodes[n].list
	if l == 0 || i < 0 || i >= len(p.elems[l-1]) || p.elems[l-1][i] == noNode {
		return 0, false
	}
	return p.elems[l-1][i], true
}

func (p positions) pos(n uint32) Pos {
	return Pos{Line: int(p.nodes[n].line), Col: int(p.nodes[n].col)}
}

// find follows path from the top as far as the file has it, and returns
// the last node found and whether that is path itself. A quoted key name
// may hold dots, so a path can split into key names in several ways
// ("a.b" is the key "a.b" or the key b under a): every split the file has
// is tried, up to maxFindSteps, before settling for the deepest partial
// match.
func (p positions) find(path string) (uint32, bool) {
	budget := maxFindSteps
	n, ok := p.findFrom(posRoot, path, &budget)
	return n, ok
}

// maxFindSteps bounds the splits find tries for one path (adversarial key
// names could otherwise make it exponential).
const maxFindSteps = 4096

func (p positions) findFrom(n uint32, rest string, budget *int) (uint32, bool) {
	if rest == "" {
		return n, true
	}
	deepest := n
	for _, c := range p.steps(n, rest) {
		if *budget--; *budget < 0 {
			break
		}
		m, ok := p.findFrom(c.node, c.rest, budget)
		if ok {
			return m, true
		}
		if deepest == n {
			deepest = m
		}
	}
	return deepest, false
}

type posStep struct {
	node uint32
	rest string
}

// steps lists the ways to take the first part of a key path: "[i]", every
// key name written in the file that is followed by ".", "[" or the end
// (shortest first), and a key named "" (which leaves no trace in a path).
func (p positions) steps(n uint32, rest string) []posStep {
	var out []posStep
	if end := strings.IndexByte(rest, ']'); rest[0] == '[' && end > 0 {
		if i, err := strconv.Atoi(rest[1:end]); err == nil && i >= 0 && i < int(p.nodes[n].elems) {
			if c, ok := p.elemAt(n, i); ok {
				out = append(out, posStep{c, strings.TrimPrefix(rest[end+1:], ".")})
			}
		}
	}
	for j := 0; j <= len(rest); j++ {
		if j < len(rest) && rest[j] != '.' && rest[j] != '[' {
			continue
		}
		if c, ok := p.edges[posEdge{parent: n, key: rest[:j]}]; ok {
			out = append(out, posStep{c, strings.TrimPrefix(rest[j:], ".")})
		}
	}
	if c, ok := p.edges[posEdge{parent: n}]; ok {
		out = append(out, posStep{c, rest})
	}
	return out
}

// lookup returns the position of path, or of the closest enclosing key or
// table written in the file when path itself is not (a defaulted key).
func (p positions) lookup(path string) Pos {
	if p.edges == nil {
		return Pos{}
	}
	n, _ := p.find(path)
	return p.pos(n)
}

// get returns the position of path and whether the file writes it.
func (p positions) get(path string) (Pos, bool) {
	if p.edges == nil {
		return Pos{}, false
	}
	n, ok := p.find(path)
	if path == "" { // a key named "" at the top
		n, ok = p.edges[posEdge{parent: posRoot}]
	}
	if !ok || n == posRoot {
		return Pos{}, false
	}
	return p.pos(n), true
}

// written reports whether the file writes path.
func (p positions) written(path string) bool {
	_, ok := p.get(path)
	return ok
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
	pos       *positions
	table     uint32 // the current [table]
}

func scanPositions(src []byte) positions {
	s := &scanner{src: src, line: 1, pos: newPositions(len(src)), table: posRoot}
	s.document()
	return *s.pos
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
	p, n := s.pos, uint32(posRoot)
	for i, k := range keys {
		n = p.key(n, k, at)
		switch last := i == len(keys)-1; {
		case last && array:
			p.nodes[n].aot = true
			n = p.elem(n, int(p.nodes[n].elems), at)
		case !last && p.nodes[n].aot && p.nodes[n].elems > 0:
			n = p.elem(n, int(p.nodes[n].elems)-1, at)
		}
	}
	s.table = n
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

func (s *scanner) keyValue(table uint32) {
	at := s.here()
	n := table
	for _, k := range s.key() {
		n = s.pos.key(n, k, at)
	}
	s.skipSpace(false)
	if s.peek(0) == '=' {
		s.advance()
	}
	s.skipSpace(false)
	s.value(n)
}

func (s *scanner) value(n uint32) {
	switch s.peek(0) {
	case '"', '\'':
		s.str()
	case '[':
		s.array(n)
	case '{':
		s.inlineTable(n)
	default:
		for s.i < len(s.src) && !strings.ContainsRune(",]}\n#", rune(s.src[s.i])) {
			s.advance()
		}
	}
}

func (s *scanner) array(n uint32) {
	s.advance() // [
	for i := 0; s.i < len(s.src); i++ {
		s.skipSpace(true)
		if s.peek(0) == ']' {
			s.advance()
			return
		}
		s.value(s.pos.elem(n, i, s.here()))
		s.skipSpace(true)
		if s.peek(0) == ',' {
			s.advance()
		}
	}
}

func (s *scanner) inlineTable(n uint32) {
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
		s.keyValue(n)
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
