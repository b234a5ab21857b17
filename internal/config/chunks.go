package config

import (
	"encoding/binary"
	"encoding/hex"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
)

// A large file without included files is loaded again in proportion to
// what changed, as included files are: the Loader cuts the file at its
// top-level [[services]] headers (serviceSegments, the cut of the parallel
// parse), groups the elements into chunks whose ends depend on their
// content (an element whose hash is 0 modulo chunkSpread ends one once
// the chunk holds chunkMin elements, so an inserted or removed service
// changes a chunk or two, not those after it),
// and keeps each chunk's checked services by the hash of its text. At the
// next load, when the text that is not services is byte for byte the same,
// a chunk whose text is unchanged is neither parsed nor checked again; a
// changed chunk is parsed and checked on its own, as an included file is
// (parseIncluded), and against the others through the index of the checks
// across files (crossIndex). Whenever anything is in doubt (the cut, a
// changed chunk that fails, a conflict with another chunk, a limit, two
// chunks alike, much of the file changed), the file is loaded whole, which
// decides and words the errors, so an error names file:line and the key
// in the file as it is now.

// A chunk holds at least chunkMin elements (the last one of a file
// excepted), then ends at each element with a chance of 1 in chunkSpread,
// and holds at most chunkMax (a file whose hashes never end a chunk still
// gets chunks): 48 on average, about 100 KB of the scale file's text.
const (
	chunkMin    = 16
	chunkSpread = 32
	chunkMax    = 128
)

// chunkSum is a 128-bit hash of text, with the Loader's seeds: a chunk's
// key.
type chunkSum [2]uint64

// chunked is what a Loader keeps of a one-file configuration between
// loads.
type chunked struct {
	path   string
	spread uint64 // chunkSpread, or a test's
	seeds  [2]maphash.Seed
	rest   chunkSum           // of the text that is not services
	units  map[chunkSum]*unit // each chunk's checked services, by its sum
	// index is what the checks across chunks found (nil: none to go by).
	index *crossIndex
	// shape is the text of the file and what its scan found (rescan);
	// elems are its elements (sumElements).
	shape shaped
	elems []elemSum
	// main and order are the configuration and the chunks of the load
	// that made c, until prepare indexes them (nil once it has).
	main  *Config
	order []chunkSum
}

// fileChunk is one chunk of a file: its elements, their text in ranges
// of the file, and its sum.
type fileChunk struct {
	sum    chunkSum
	ranges [][2]int // each element's text, header and sub-tables
}

// fileCut is a file cut into the text that is not services, and chunks.
type fileCut struct {
	rest   []byte
	chunks []fileChunk
	elems  []elemSum // every element, in file order
}

// elemSum is one element's text in a file, and its sum.
type elemSum struct {
	start, end int
	sum        chunkSum
}

// text is the buffer the kept text was read into (nil: none), for the
// Loader to read into once it keeps c no more: nothing else refers to it
// (what is decoded from a file is copied out of it).
func (c *chunked) text() []byte {
	if c == nil {
		return nil
	}
	return c.shape.data[:0]
}

// chunkKey is the key of a chunk's unit in the index and the File's
// spans: its sum first, which tells two keys apart at their first bytes.
func chunkKey(path string, sum chunkSum) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], sum[0])
	binary.LittleEndian.PutUint64(b[8:], sum[1])
	return hex.EncodeToString(b[:]) + "@" + path
}

func (c *chunked) sum(parts ...[]byte) chunkSum {
	var s chunkSum
	for i := range s {
		var h maphash.Hash
		h.SetSeed(c.seeds[i])
		for _, p := range parts {
			h.Write(p)
		}
		s[i] = h.Sum64()
	}
	return s
}

// cut cuts sh into the text that is not services and chunks of whole
// elements; ok is false when serviceSegments does not cut it or it has
// fewer than two elements.
func (c *chunked) cut(sh shaped) (fc fileCut, ok bool) {
	segs, elements, ok := serviceSegments(sh.headers, len(sh.data))
	if !ok || elements < 2 {
		return fc, false
	}
	data := sh.data
	fc.rest = append(fc.rest, data[:sh.headers[0].at]...)
	fc.elems = make([]elemSum, 0, elements)
	for _, sg := range segs {
		switch {
		case !sg.service:
			fc.rest = append(fc.rest, data[sg.start:sg.end]...)
		case sg.element:
			fc.elems = append(fc.elems, elemSum{start: sg.start, end: sg.end})
		default: // a sub-table of the element before it, right after it
			fc.elems[len(fc.elems)-1].end = sg.end
		}
	}
	c.sumElements(sh, fc.elems)
	var cur fileChunk
	var sums []byte
	for _, e := range fc.elems {
		es := e.sum
		cur.ranges = append(cur.ranges, [2]int{e.start, e.end})
		sums = binary.LittleEndian.AppendUint64(sums, es[0])
		sums = binary.LittleEndian.AppendUint64(sums, es[1])
		if n := len(cur.ranges); n >= min(chunkMin, int(c.spread)) && es[0]%c.spread == 0 || n == chunkMax {
			cur.sum = c.sum(sums)
			fc.chunks = append(fc.chunks, cur)
			cur, sums = fileChunk{}, sums[:0]
		}
	}
	if len(cur.ranges) > 0 {
		cur.sum = c.sum(sums)
		fc.chunks = append(fc.chunks, cur)
	}
	return fc, true
}

// sumElements sums the text of each element of sh; an element that lies
// in a part rescan found unchanged, where the last cut had an element of
// the same text, gets that one's sum.
func (c *chunked) sumElements(sh shaped, elems []elemSum) {
	last := c.elems
	k := 0 // last[k] is the first element of the last file that may match
	for i := range elems {
		e := &elems[i]
		if sh.rescanned {
			var at int // where the element's text was in the last file
			switch {
			case e.end <= sh.prefix:
				at = e.start
			case e.start >= sh.tail:
				at = e.start - sh.delta
			default:
				at = -1
			}
			for k < len(last) && last[k].start < at {
				k++
			}
			if at >= 0 && k < len(last) && last[k].start == at && last[k].end-at == e.end-e.start {
				e.sum = last[k].sum
				continue
			}
		}
		e.sum = c.sum(sh.data[e.start:e.end])
	}
}

// text is the chunk's elements, one after the other.
func (ch *fileChunk) text(data []byte) []byte {
	n := 0
	for _, r := range ch.ranges {
		n += r[1] - r[0]
	}
	b := make([]byte, 0, n)
	for _, r := range ch.ranges {
		b = append(b, data[r[0]:r[1]]...)
	}
	return b
}

// newChunked keeps the chunks of a file Parse accepted as cfg (sh is its
// text and headers), and returns with it where their services are among
// cfg's. It returns nil when the file is not cut into chunks, or its
// chunks do not hold its services one for one. The chunks' distinct
// backends and the index across them are left to prepare.
func newChunked(path string, sh shaped, cfg *Config, spread int) (*chunked, []span) {
	c := &chunked{path: path, spread: uint64(spread), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	fc, ok := c.cut(sh)
	if !ok || len(cfg.Include) > 0 {
		return nil, nil
	}
	n := 0
	for _, ch := range fc.chunks {
		n += len(ch.ranges)
	}
	if n != len(cfg.Services) {
		return nil, nil
	}
	c.rest = c.sum(fc.rest)
	c.units = make(map[chunkSum]*unit, len(fc.chunks))
	c.main, c.shape, c.elems = cfg, sh, fc.elems
	// The daemon fills in the VIPs pools give in the File's services: the
	// chunks keep a copy of their own.
	svcs := slices.Clone(cfg.Services)
	at := 0
	for _, ch := range fc.chunks {
		if _, dup := c.units[ch.sum]; dup {
			return nil, nil
		}
		k := len(ch.ranges)
		c.units[ch.sum] = &unit{file: chunkKey(path, ch.sum), services: svcs[at : at+k : at+k]}
		c.order = append(c.order, ch.sum)
		at += k
	}
	return c, c.spans(fc)
}

// prepare finds the distinct backends of the chunks newChunked kept, and
// indexes them for the checks across chunks of the next load.
func (c *chunked) prepare() {
	if c == nil || c.main == nil {
		return
	}
	units := make([]*unit, 1, len(c.order)+1)
	units[0] = &unit{file: c.path}
	for _, sum := range c.order {
		u := c.units[sum]
		*u = *newUnit(u.file, u.services)
		units = append(units, u)
	}
	c.index = newCrossIndex(c.main, units)
	c.main, c.order = nil, nil
}

// spans are where the chunks' services are among the File's services, in
// the order of fc.
func (c *chunked) spans(fc fileCut) []span {
	out := make([]span, 0, len(fc.chunks))
	at := 0
	for _, ch := range fc.chunks {
		u := c.units[ch.sum]
		out = append(out, span{file: u.file, svcs: u.services, at: at})
		at += len(u.services)
	}
	return out
}

// reload loads the file at path, of content data, from the chunks kept of
// its last load: it returns nil when it cannot (anything in doubt), and
// the caller loads the file whole. It may drop what it keeps (c.index)
// when it returns nil; c is otherwise unchanged unless it returns a File.
func (c *chunked) reload(path string, data []byte, digest func() string) *File {
	if c == nil || c.path != path {
		return nil
	}
	c.prepare()
	if len(data) > MaxFileSize {
		return nil
	}
	sh, ok := c.rescan(stripBOM(data))
	if !ok {
		return nil
	}
	fc, ok := c.cut(sh)
	if !ok || c.sum(fc.rest) != c.rest {
		return nil
	}
	cfg, ok := parseRest(path, fc.rest)
	if !ok {
		return nil
	}
	units := make([]*unit, 1, len(fc.chunks)+1)
	units[0] = &unit{file: path} // the main file's own: none
	var changed []int
	seen := make(map[chunkSum]bool, len(fc.chunks))
	parsed := int64(len(fc.rest))
	for i, ch := range fc.chunks {
		if seen[ch.sum] {
			return nil // two chunks alike: duplicate names, for the whole load to word
		}
		seen[ch.sum] = true
		u := c.units[ch.sum]
		if u == nil {
			changed = append(changed, i)
			for _, r := range ch.ranges {
				parsed += int64(r[1] - r[0])
			}
		}
		units = append(units, u)
	}
	if parsed > int64(len(sh.data)/4) {
		return nil // much of the file changed: loaded whole, on every CPU
	}
	if !c.parseChunks(path, sh.data, fc, changed, cfg, units[1:]) || !c.checkAcross(cfg, units) {
		return nil
	}
	next := make(map[chunkSum]*unit, len(fc.chunks))
	for i, ch := range fc.chunks {
		next[ch.sum] = units[i+1]
	}
	c.units, c.shape, c.elems = next, sh, fc.elems
	f := &File{Path: path, Config: cfg, Size: int64(len(data)), Parsed: parsed, spans: c.spans(fc)}
	n := 0
	for _, u := range units {
		n += len(u.services)
	}
	cfg.Services = make([]Service, 0, n)
	for _, u := range units {
		cfg.Services = append(cfg.Services, u.services...)
	}
	f.Digest = digest()
	return f
}

// parseRest decodes and checks the text of a file that is not services:
// ok is false when it fails, holds services or includes files.
func parseRest(path string, rest []byte) (*Config, bool) {
	sh, raw, err := parseBounded(path, rest)
	if err != nil {
		return nil, false
	}
	if _, taken := raw["services"]; taken {
		return nil, false
	}
	cfg, err := decodeConfig(path, sh.data, raw)
	if err != nil || len(cfg.Include) > 0 || len(cfg.Services) > 0 {
		return nil, false
	}
	return cfg, true
}

// parseChunks parses and checks the changed chunks (indexes of fc.chunks)
// against main, several at once, filling in units; ok is false when one
// fails or does not hold its elements' services one for one.
func (c *chunked) parseChunks(path string, data []byte, fc fileCut, changed []int, main *Config, units []*unit) bool {
	fails := make([]bool, len(changed))
	var wg sync.WaitGroup
	next := make(chan int, len(changed))
	for i := range changed {
		next <- i
	}
	close(next)
	for range min(runtime.GOMAXPROCS(0), len(changed)) {
		wg.Go(func() {
			for i := range next {
				ch := &fc.chunks[changed[i]]
				u, err := parseIncluded(path, ch.text(data), main)
				if err != nil || len(u.services) != len(ch.ranges) {
					fails[i] = true
					continue
				}
				u.file = chunkKey(path, ch.sum)
				units[changed[i]] = u
			}
		})
	}
	wg.Wait()
	return !slices.Contains(fails, true)
}

// checkAcross checks the chunks' services against each other: the changed
// ones against the index of the others, or all of them when there is no
// index (crossCheck), building it. ok is false when they conflict or might
// (the whole load decides); the index is then dropped.
func (c *chunked) checkAcross(main *Config, units []*unit) bool {
	if c.index != nil && c.index.update(main, units) {
		return true
	}
	c.index = nil
	if crossCheck(main, units) != nil {
		return false
	}
	c.index = newCrossIndex(main, units)
	return true
}
