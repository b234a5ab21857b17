package config

import (
	"strconv"
	"strings"
)

// rawWritten reports whether the parser's tree holds the key path
// ("bgp.peers[2].asn"): whether the file writes it. It serves the first
// pass of a file, which has no position index; key names of the schema
// hold neither "." nor "[", and a file with any other key fails that pass.
func rawWritten(raw map[string]any, path string) bool {
	var v any = raw
	for part := range strings.SplitSeq(path, ".") {
		key, index, _ := strings.Cut(part, "[")
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[key]; !ok {
			return false
		}
		for index != "" {
			var n string
			n, index, _ = strings.Cut(index, "]")
			index = strings.TrimPrefix(index, "[")
			i, err := strconv.Atoi(n)
			if v, ok = rawElem(v, i); err != nil || !ok {
				return false
			}
		}
	}
	return true
}

// rawElem returns element i of an array of the parser's tree.
func rawElem(v any, i int) (any, bool) {
	switch a := v.(type) {
	case []any:
		if i >= 0 && i < len(a) {
			return a[i], true
		}
	case []map[string]any:
		if i >= 0 && i < len(a) {
			return a[i], true
		}
	}
	return nil, false
}
