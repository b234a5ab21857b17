package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/aird-net/aird/internal/config"
)

// configTOML writes the running configuration, as the API returns it in
// JSON, in TOML with the file's own key names, in the order of the schema
// (config.Config): what `airctl config show` prints. Keys whose value is
// empty (an unset address, an empty string) are left out, as the file
// would; the result loads as a configuration file that means the same
// (TestConfigTOMLRoundTrip). Passwords never leave aird, so they are not
// in it.
func configTOML(w io.Writer, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("decode configuration: %w", err)
	}
	var b bytes.Buffer
	if err := writeTable(&b, nil, false, v, reflect.TypeFor[config.Config]()); err != nil {
		return err
	}
	_, err := w.Write(bytes.TrimLeft(b.Bytes(), "\n"))
	return err
}

// field is one key of a table: its JSON and TOML names and its Go type.
type field struct {
	json, toml string
	typ        reflect.Type
}

func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		jn, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		tn, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if jn == "" || jn == "-" || tn == "" || tn == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		fs = append(fs, field{json: jn, toml: tn, typ: ft})
	}
	return fs
}

// isTable says whether values of t are written as TOML tables: structs
// that do not marshal themselves to a scalar.
func isTable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	p := reflect.PointerTo(t)
	for _, iface := range []reflect.Type{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()} {
		if t.Implements(iface) || p.Implements(iface) {
			return false
		}
	}
	return true
}

// writeTable writes the header of the table (none for the root, path nil;
// [[path]] for an element of an array of tables), the scalar keys of v,
// then its sub-tables and arrays of tables, which TOML attaches to the
// table (or array element) written last.
func writeTable(b *bytes.Buffer, path []string, array bool, v map[string]any, t reflect.Type) error {
	fs := fieldsOf(t)
	if path != nil {
		b.WriteString("\n" + header(path, array) + "\n")
	}
	for _, f := range fs {
		val, ok := v[f.json]
		if !ok || val == nil || isTable(f.typ) || (f.typ.Kind() == reflect.Slice && isTable(f.typ.Elem())) {
			continue
		}
		s, ok, err := scalarTOML(f.toml, val)
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(append(path, f.toml), "."), err)
		}
		if ok {
			fmt.Fprintf(b, "%s = %s\n", key(f.toml), s)
		}
	}
	for _, f := range fs {
		val, ok := v[f.json]
		if !ok || val == nil {
			continue
		}
		sub := append(append([]string(nil), path...), f.toml)
		switch {
		case isTable(f.typ):
			m, ok := val.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: expected a table", strings.Join(sub, "."))
			}
			if err := writeTable(b, sub, false, m, f.typ); err != nil {
				return err
			}
		case f.typ.Kind() == reflect.Slice && isTable(f.typ.Elem()):
			list, ok := val.([]any)
			if !ok {
				return fmt.Errorf("%s: expected an array of tables", strings.Join(sub, "."))
			}
			for _, el := range list {
				m, ok := el.(map[string]any)
				if !ok {
					return fmt.Errorf("%s: expected a table", strings.Join(sub, "."))
				}
				if err := writeTable(b, sub, true, m, f.typ.Elem()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func header(path []string, array bool) string {
	ks := make([]string, len(path))
	for i, p := range path {
		ks[i] = key(p)
	}
	if array {
		return "[[" + strings.Join(ks, ".") + "]]"
	}
	return "[" + strings.Join(ks, ".") + "]"
}

// key quotes a key that is not a TOML bare key (schema keys never need it).
func key(k string) string {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return strconv.Quote(k)
		}
	}
	return k
}

// scalarTOML renders a JSON scalar or array of scalars as a TOML value; ok
// is false for a value the file would leave out (an empty string).
func scalarTOML(name string, v any) (string, bool, error) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "", false, nil
		}
		return tomlString(x), true, nil
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err != nil {
			return "", false, fmt.Errorf("not an integer: %s", x)
		}
		if name == "socket-mode" {
			n, _ := strconv.ParseInt(string(x), 10, 64)
			return "0o" + strconv.FormatInt(n, 8), true, nil
		}
		return string(x), true, nil
	case bool:
		return strconv.FormatBool(x), true, nil
	case []any:
		parts := make([]string, 0, len(x))
		for _, el := range x {
			s, ok, err := scalarTOML(name, el)
			if err != nil {
				return "", false, err
			}
			if !ok {
				s = `""`
			}
			parts = append(parts, s)
		}
		return "[" + strings.Join(parts, ", ") + "]", true, nil
	}
	return "", false, fmt.Errorf("unexpected value %v", v)
}

// tomlString writes a TOML basic string. JSON's escapes (\" \\ \b \f \n \r
// \t \uXXXX) are all TOML escapes too.
func tomlString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
