package config

import (
	"encoding"
	"math"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// defaulter is implemented by schema types whose elements, created while
// decoding an array of tables, start from defaults rather than zero values.
type defaulter interface {
	setDefaults()
}

// stringForm is implemented by schema tables that may also be written as
// one string (a backend as its address).
type stringForm interface {
	decodeString(s string) error
}

var (
	stringFormType      = reflect.TypeFor[stringForm]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	valueDecoderType    = reflect.TypeFor[valueDecoder]()
	defaulterType       = reflect.TypeFor[defaulter]()
)

// decoder fills schema structs from the TOML parser's generic tree, strictly:
// keys match their toml tag exactly, unknown keys and type mismatches are
// errors, and every error is collected.
type decoder struct {
	r     *reporter
	kinds map[reflect.Type]typeKind // which decoding interfaces a type has
}

// typeKind records which of the decoding interfaces a pointer to a schema
// type implements: asking reflect once per type rather than once per value
// matters at a million backends.
type typeKind struct{ value, text, str bool }

func (d *decoder) kind(t reflect.Type) typeKind {
	if k, ok := d.kinds[t]; ok {
		return k
	}
	k := typeKind{value: t.Implements(valueDecoderType), text: t.Implements(textUnmarshalerType), str: t.Implements(stringFormType)}
	if d.kinds == nil {
		d.kinds = map[reflect.Type]typeKind{}
	}
	d.kinds[t] = k
	return k
}

// join and index build the key path of a child for error messages. The
// first pass of a file (r.fast) records no messages, and builds none.
func (d *decoder) join(path, key string) string {
	if d.r.fast {
		return ""
	}
	return joinPath(path, key)
}

func (d *decoder) index(path string, i int) string {
	if d.r.fast {
		return ""
	}
	return indexPath(path, i)
}

func (d *decoder) decode(path string, v any, rv reflect.Value) {
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			rv.Set(reflect.New(rv.Type().Elem()))
			applyDefaults(rv)
		}
		d.decode(path, v, rv.Elem())
		return
	}
	if rv.CanAddr() {
		pv := rv.Addr()
		k := d.kind(pv.Type())
		if k.value {
			if err := pv.Interface().(valueDecoder).decodeTOML(v); err != nil {
				d.r.at(path, "%v", err)
			}
			return
		}
		if k.text {
			d.text(path, v, pv.Interface().(encoding.TextUnmarshaler))
			return
		}
		if s, ok := v.(string); ok && k.str {
			if err := pv.Interface().(stringForm).decodeString(s); err != nil {
				d.r.at(path, "%s", cleanTextErr(err))
			}
			return
		}
	}
	switch rv.Kind() {
	case reflect.Struct:
		d.table(path, v, rv)
	case reflect.Slice:
		d.slice(path, v, rv)
	case reflect.String:
		if s, ok := v.(string); !ok {
			d.r.at(path, "expected a string, found %s", tomlType(v))
		} else if at, r, bad := controlChar(s); bad {
			d.r.at(path, "%q holds the control character %U at byte %d: strings may not hold control characters", s, r, at)
		} else {
			rv.SetString(s)
		}
	case reflect.Bool:
		if b, ok := v.(bool); ok {
			rv.SetBool(b)
		} else {
			d.r.at(path, "expected true or false, found %s", tomlType(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.integer(path, v, rv)
	default:
		d.r.at(path, "internal error: cannot decode into %s", rv.Type())
	}
}

// controlChar finds the first control character of s (C0, DEL or C1, tab
// and newline included): the offset, the character and whether there is
// one. Names, paths and interface names with one are truncated or misread
// by what they are passed to (a NUL ends a C string, a newline splits a
// log line or an HTTP request).
func controlChar(s string) (int, rune, bool) {
	for i, r := range s {
		if unicode.IsControl(r) {
			return i, r, true
		}
	}
	return 0, 0, false
}

func (d *decoder) text(path string, v any, u encoding.TextUnmarshaler) {
	s, ok := v.(string)
	if !ok {
		d.r.at(path, "expected a string, found %s", tomlType(v))
		return
	}
	if err := u.UnmarshalText([]byte(s)); err != nil {
		d.r.at(path, "%s", cleanTextErr(err))
	}
}

// cleanTextErr turns netip's parse errors (`ParseAddr("x"): reason`,
// `netip.ParsePrefix("x/8"): reason`) into a short message.
func cleanTextErr(err error) string {
	return cleanParseMsg(err.Error())
}

func cleanParseMsg(msg string) string {
	for _, f := range []struct{ prefix, what string }{
		{"netip.ParseAddr(", "address"}, {"ParseAddr(", "address"},
		{"netip.ParsePrefix(", "prefix"}, {"ParsePrefix(", "prefix"},
	} {
		rest, ok := strings.CutPrefix(msg, f.prefix)
		if !ok {
			continue
		}
		q, err := strconv.QuotedPrefix(rest)
		if err != nil || !strings.HasPrefix(rest[len(q):], "): ") {
			return msg
		}
		return "invalid " + f.what + " " + q + ": " + cleanParseMsg(rest[len(q)+3:])
	}
	return msg
}

func (d *decoder) integer(path string, v any, rv reflect.Value) {
	n, ok := v.(int64)
	if !ok {
		d.r.at(path, "expected an integer, found %s", tomlType(v))
		return
	}
	if rv.OverflowInt(n) || (rv.Kind() == reflect.Int && (n > math.MaxInt32 || n < math.MinInt32)) {
		d.r.at(path, "integer %d is out of range", n)
		return
	}
	rv.SetInt(n)
}

func (d *decoder) slice(path string, v any, rv reflect.Value) {
	var elems []any
	switch x := v.(type) {
	case []any:
		elems = x
	case []map[string]any:
		for _, m := range x {
			elems = append(elems, m)
		}
	default:
		d.r.at(path, "expected an array, found %s", tomlType(v))
		return
	}
	if len(elems) == 0 {
		// An empty array is the same setting as an absent key: keep Diff
		// from reporting a change between the two.
		rv.Set(reflect.Zero(rv.Type()))
		return
	}
	out := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
	defaults := reflect.PointerTo(rv.Type().Elem()).Implements(defaulterType) // once, not per element
	elem := func(d *decoder, i int) {
		el := out.Index(i)
		if defaults {
			el.Addr().Interface().(defaulter).setDefaults()
		}
		d.decode(d.index(path, i), elems[i], el)
	}
	if workers := runtime.GOMAXPROCS(0); d.r.fast && workers > 1 && len(elems) >= parallelElems {
		d.inParallel(workers, len(elems), elem)
	} else {
		for i := range elems {
			elem(d, i)
		}
	}
	rv.Set(out)
}

// parallelElems is the fewest elements of an array (10,000 services, not
// a service's 100 backends) that the first pass decodes on every CPU.
const parallelElems = 1024

// inParallel calls f for 0 to n-1 on workers goroutines, each with a
// decoder of its own (the first pass keeps no errors, only whether there
// was one: that is handed back).
func (d *decoder) inParallel(workers, n int, f func(d *decoder, i int)) {
	subs := make([]*decoder, workers)
	var wg sync.WaitGroup
	for w := range subs {
		sub := &decoder{r: &reporter{file: d.r.file, fast: true, raw: d.r.raw}}
		subs[w] = sub
		wg.Go(func() {
			for i := w * n / workers; i < (w+1)*n/workers; i++ {
				f(sub, i)
			}
		})
	}
	wg.Wait()
	for _, sub := range subs {
		d.r.bad = d.r.bad || sub.r.bad
	}
}

func applyDefaults(pv reflect.Value) {
	if pv.Type().Implements(defaulterType) {
		pv.Interface().(defaulter).setDefaults()
	}
}

// table decodes a TOML table into a struct, visiting keys in file order so
// errors come out in the order a reader meets them.
func (d *decoder) table(path string, v any, rv reflect.Value) {
	m, ok := v.(map[string]any)
	if !ok {
		d.r.at(path, "expected a table, found %s", tomlType(v))
		return
	}
	fields := fieldsByTag(rv.Type())
	if d.r.fast { // no errors to order: the map's order will do
		for k, e := range m {
			if idx, ok := fields[k]; ok {
				d.decode(d.join(path, k), e, rv.Field(idx))
			} else {
				d.unknown(d.join(path, k), k, fields)
			}
		}
		return
	}
	type keyAt struct {
		key string
		at  Pos
	}
	keys := make([]keyAt, 0, len(m))
	for k := range m {
		keys = append(keys, keyAt{k, d.r.pos.lookup(joinPath(path, k))})
	}
	sort.Slice(keys, func(i, j int) bool {
		pi, pj := keys[i].at, keys[j].at
		if pi.Line != pj.Line {
			return pi.Line < pj.Line
		}
		return pi.Col < pj.Col || (pi.Col == pj.Col && keys[i].key < keys[j].key)
	})
	for _, ka := range keys {
		k := ka.key
		kp := joinPath(path, k)
		idx, ok := fields[k]
		if !ok {
			d.unknown(kp, k, fields)
			continue
		}
		d.decode(kp, m[k], rv.Field(idx))
	}
}

// removedKeys explains keys aird no longer has.
var removedKeys = map[string]string{
	"api.listen": "the TCP listener of the API was removed: the API is served only on the unix socket (api.socket), " +
		"where aird knows who is calling; run airctl on the node (ssh NODE airctl ...)",
}

func (d *decoder) unknown(path, key string, fields map[string]int) {
	if why, ok := removedKeys[path]; ok {
		d.r.at(path, "%s", why)
		return
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	for name := range fields {
		if norm(name) == norm(key) {
			d.r.at(path, "unknown key %q (keys are case-sensitive kebab-case: did you mean %q?)", key, name)
			// The value was meant for name: checks of name (for example
			// "asn is required") would only repeat this error.
			d.r.shadow(joinPath(parentPath(path), name))
			return
		}
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	d.r.at(path, "unknown key %q (valid keys here: %s)", key, strings.Join(names, ", "))
}

// fieldsByTag maps each toml tag of a struct type to its field index.
// fieldTags caches fieldsByTag: a file may hold a million tables of one
// type.
var fieldTags sync.Map // reflect.Type -> map[string]int

func fieldsByTag(t reflect.Type) map[string]int {
	if m, ok := fieldTags.Load(t); ok {
		return m.(map[string]int)
	}
	out := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if tag != "" && tag != "-" {
			out[tag] = i
		}
	}
	fieldTags.Store(t, out)
	return out
}
