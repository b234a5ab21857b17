package config

import (
	"bytes"
	"sort"
)

// A reload of a large file scans only the part that changed for the
// limits and headers (the shape scan): the scan of a file at a top-level
// header depends on nothing before it but the counts of items and
// scalars, so where the file starts and ends as the last one kept did,
// the headers there and the counts before them are the last scan's. The
// scan resumes at the last header at or before the first byte that
// differs and stops at the first header within the unchanged tail that
// was a header of the last file; any problem it finds loads the file
// whole, which reports it at its line.

// rescan returns the shape of data, a later version of c.data, scanning
// only what differs; ok is false when the scan stops or a limit is
// broken.
func (c *chunked) rescan(data []byte) (sh shaped, ok bool) {
	old, hs := c.shape.data, c.shape.headers
	prefix := commonPrefix(old, data)
	suffix := commonSuffix(old[prefix:], data[prefix:])
	delta := len(data) - len(old)
	// k: the last header at or before the first changed byte.
	k := sort.Search(len(hs), func(i int) bool { return hs[i].at > prefix }) - 1
	s := &shapeScanner{src: data, line: 1, resumed: -1}
	if k >= 0 {
		s.i, s.lineStart = hs[k].at, hs[k].at
	}
	tail := len(data) - suffix
	j := len(hs)
	s.until = func(at int) bool {
		if at < tail {
			return false
		}
		j = sort.Search(len(hs), func(i int) bool { return hs[i].at >= at-delta })
		return j < len(hs) && hs[j].at == at-delta
	}
	s.document()
	if s.stopped || s.err != nil {
		return shaped{}, false
	}
	if s.resumed < 0 {
		j = len(hs)
	}
	// The counts before the scanned part (before header k), after it,
	// and those of the last file's before the header it resumed at.
	var base shapeHeader
	if k >= 0 {
		base = hs[k]
	}
	items, scalars := base.items+s.items, base.scalars+s.scalars
	sh = shaped{data: data, items: items, scalars: scalars, rescanned: true, prefix: prefix, tail: tail, delta: delta,
		headers: make([]shapeHeader, 0, max(k, 0)+len(s.headers)+len(hs)-j)}
	sh.headers = append(sh.headers, hs[:max(k, 0)]...)
	for _, h := range s.headers {
		h.items += base.items
		h.scalars += base.scalars
		sh.headers = append(sh.headers, h)
	}
	if j < len(hs) {
		kept := hs[j]
		for _, h := range hs[j:] {
			h.at += delta
			h.items += items - kept.items
			h.scalars += scalars - kept.scalars
			sh.headers = append(sh.headers, h)
		}
		sh.items += c.shape.items - kept.items
		sh.scalars += c.shape.scalars - kept.scalars
	}
	return sh, sh.items <= MaxItems && sh.scalars <= MaxScalars
}

// commonPrefix is the length of the longest prefix a and b share.
func commonPrefix(a, b []byte) int {
	const block = 4096
	n := min(len(a), len(b))
	i := 0
	for i+block <= n && bytes.Equal(a[i:i+block], b[i:i+block]) {
		i += block
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// commonSuffix is the length of the longest suffix a and b share.
func commonSuffix(a, b []byte) int {
	const block = 4096
	n := min(len(a), len(b))
	i := 0
	for i+block <= n && bytes.Equal(a[len(a)-i-block:len(a)-i], b[len(b)-i-block:len(b)-i]) {
		i += block
	}
	for i < n && a[len(a)-1-i] == b[len(b)-1-i] {
		i++
	}
	return i
}
