package doccheck

import (
	"reflect"
	"regexp"
	"strings"

	"github.com/aird-net/aird/internal/config"
)

// Keys are the configuration's keys as dotted paths without indices
// ("bgp.peers.import.max-prefixes"), tables included, mapped to whether
// the key is a table.
func Keys() map[string]bool {
	keys := map[string]bool{}
	walk(reflect.TypeFor[config.Config](), "", keys)
	return keys
}

func walk(t reflect.Type, prefix string, keys map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		table := ft.Kind() == reflect.Struct && !scalar(ft)
		keys[path] = table
		if table {
			walk(ft, path, keys)
		}
	}
}

// scalar says whether a struct type is written as one TOML value.
func scalar(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, m := range []string{"UnmarshalText", "MarshalText", "MarshalJSON"} {
		if _, ok := t.MethodByName(m); ok {
			return true
		}
		if _, ok := p.MethodByName(m); ok {
			return true
		}
	}
	// Types the decoder handles itself (an AS number or "external", a
	// status code or range) and netip values.
	return t.PkgPath() == "net/netip" || t.Name() == "PeerASN" || t.Name() == "StatusRange"
}

var (
	sections   = `(node|datapath|bgp|ipam|lb|services|api|metrics|log)`
	tableRef   = regexp.MustCompile(`^\[\[?` + sections + `((\.[a-z0-9-]+)*)\]\]?$`)
	keyRef     = regexp.MustCompile(`^` + sections + `(\[[a-z0-9]*\])?((\.[a-z0-9-]+(\[[a-z0-9]*\])?)+)( ?=.*)?$`)
	indexInKey = regexp.MustCompile(`\[[a-z0-9]*\]`)
	// ipam.db, log.go: file names, not keys.
	fileName = regexp.MustCompile(`\.(db|go|md|sh|toml|json|service|conf|h|c|o)$`)
)

// ConfigKey returns the configuration key a code span names: a table
// ("[bgp.drain]", "[[bgp.peers]]") or a dotted key ("bgp.drain.wait",
// "bgp.peers[1].bfd.min-rx", "node.uplinks = []"), without indices.
func ConfigKey(span string) (string, bool) {
	if m := tableRef.FindStringSubmatch(span); m != nil {
		return m[1] + m[2], true
	}
	if m := keyRef.FindStringSubmatch(span); m != nil && !fileName.MatchString(span) {
		return m[1] + indexInKey.ReplaceAllString(m[3], ""), true
	}
	return "", false
}
