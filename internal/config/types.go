package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// valueDecoder is implemented by schema types that accept more than one TOML
// type (an ASN is a number or "external"). The decoder hands them the raw
// value from the TOML parser: string, int64, float64, bool, []any or
// map[string]any.
type valueDecoder interface {
	decodeTOML(v any) error
}

// Duration is a time.Duration written as a Go duration string ("9s",
// "1m30s", "300ms").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d *Duration) decodeTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("expected a duration string with a unit such as \"5s\", found %s", tomlType(v))
	}
	p, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit: ms, s, m, h", s)
	}
	*d = Duration(p)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ASN is a 4-byte autonomous system number.
type ASN uint32

func (a *ASN) decodeTOML(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("expected an AS number (integer), found %s", tomlType(v))
	}
	if n < 0 || n > math.MaxUint32 {
		return fmt.Errorf("AS number %d is outside 0..4294967295", n)
	}
	*a = ASN(n)
	return nil
}

// PeerASN is a neighbour's AS: a number, or "external" (any AS other than
// ours) or "internal" (our AS).
type PeerASN struct {
	Number ASN
	Kind   string // "", "external" or "internal"
}

// IsSet reports whether the key was given.
func (p PeerASN) IsSet() bool { return p.Number != 0 || p.Kind != "" }

func (p *PeerASN) decodeTOML(v any) error {
	if s, ok := v.(string); ok {
		if s != "external" && s != "internal" {
			return fmt.Errorf("invalid peer AS %q: use a number, \"external\" or \"internal\"", s)
		}
		*p = PeerASN{Kind: s}
		return nil
	}
	if _, ok := v.(int64); !ok {
		return fmt.Errorf("expected an AS number (integer), \"external\" or \"internal\", found %s", tomlType(v))
	}
	var n ASN
	if err := n.decodeTOML(v); err != nil {
		return err
	}
	*p = PeerASN{Number: n}
	return nil
}

func (p PeerASN) String() string {
	if p.Kind != "" {
		return p.Kind
	}
	return strconv.FormatUint(uint64(p.Number), 10)
}

// MarshalJSON writes a number, or the string "external" / "internal".
func (p PeerASN) MarshalJSON() ([]byte, error) {
	if p.Kind != "" {
		return json.Marshal(p.Kind)
	}
	return json.Marshal(uint32(p.Number))
}

// PrefixFilter matches routes inside Prefix whose length lies in [GE, LE]:
// "fd00:200::/40 le 64", "0.0.0.0/0", "10.0.0.0/8 ge 24 le 32". Without ge
// and le it matches the prefix exactly.
type PrefixFilter struct {
	Prefix netip.Prefix
	GE, LE int
}

// UnmarshalText parses the "PREFIX [ge N] [le M]" form.
func (f *PrefixFilter) UnmarshalText(b []byte) error {
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return errors.New("empty prefix filter")
	}
	p, err := netip.ParsePrefix(fields[0])
	if err != nil {
		return fmt.Errorf("invalid prefix %q in filter", fields[0])
	}
	if p != p.Masked() {
		return fmt.Errorf("prefix %s has host bits set (did you mean %s?)", p, p.Masked())
	}
	out := PrefixFilter{Prefix: p, GE: p.Bits(), LE: p.Bits()}
	rest := fields[1:]
	seen := map[string]bool{}
	for len(rest) > 0 {
		if len(rest) < 2 || (rest[0] != "ge" && rest[0] != "le") || seen[rest[0]] {
			return fmt.Errorf("invalid prefix filter %q: the form is \"PREFIX [ge N] [le M]\"", string(b))
		}
		n, err := strconv.Atoi(rest[1])
		if err != nil || n < p.Bits() || n > p.Addr().BitLen() {
			return fmt.Errorf("invalid prefix filter %q: %s must be between %d and %d", string(b), rest[0], p.Bits(), p.Addr().BitLen())
		}
		seen[rest[0]] = true
		if rest[0] == "ge" {
			out.GE = n
			if !seen["le"] {
				out.LE = p.Addr().BitLen()
			}
		} else {
			out.LE = n
		}
		rest = rest[2:]
	}
	if out.GE > out.LE {
		return fmt.Errorf("invalid prefix filter %q: ge is above le", string(b))
	}
	*f = out
	return nil
}

// MarshalText writes the filter back in its canonical form.
func (f PrefixFilter) MarshalText() ([]byte, error) {
	s := f.Prefix.String()
	if f.GE != f.Prefix.Bits() {
		s += " ge " + strconv.Itoa(f.GE)
	}
	if f.LE != f.Prefix.Bits() {
		s += " le " + strconv.Itoa(f.LE)
	}
	return []byte(s), nil
}

// Matches reports whether the route p is allowed by the filter.
func (f PrefixFilter) Matches(p netip.Prefix) bool {
	return p.Addr().BitLen() == f.Prefix.Addr().BitLen() && p.Bits() >= f.GE && p.Bits() <= f.LE &&
		f.Prefix.Contains(p.Addr())
}

// StatusRange is an inclusive range of HTTP status codes: 200, "204" or
// "200-399".
type StatusRange struct{ Min, Max int }

func (r *StatusRange) decodeTOML(v any) error {
	var lo, hi int
	switch x := v.(type) {
	case int64:
		lo, hi = int(x), int(x)
	case string:
		a, b, found := strings.Cut(x, "-")
		var err1, err2 error
		lo, err1 = strconv.Atoi(strings.TrimSpace(a))
		hi, err2 = lo, nil
		if found {
			hi, err2 = strconv.Atoi(strings.TrimSpace(b))
		}
		if err1 != nil || err2 != nil {
			return fmt.Errorf("invalid status range %q: use a code like 200 or a range like \"200-399\"", x)
		}
	default:
		return fmt.Errorf("expected a status code or range, found %s", tomlType(v))
	}
	if lo < 100 || hi > 599 || lo > hi {
		return fmt.Errorf("invalid status range %d-%d: codes are 100..599, low to high", lo, hi)
	}
	*r = StatusRange{Min: lo, Max: hi}
	return nil
}

// MarshalText writes "200-399", or "200" for a single code.
func (r StatusRange) MarshalText() ([]byte, error) {
	if r.Min == r.Max {
		return []byte(strconv.Itoa(r.Min)), nil
	}
	return []byte(fmt.Sprintf("%d-%d", r.Min, r.Max)), nil
}

// tomlType names the TOML type of a value from the parser.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// TunnelSource is one element of datapath.tunnel-sources: a prefix tunnel
// packets may come from, or a keyword: "on-link" (the prefixes of the
// uplinks' addresses, followed as they change) or "none" (no tunnel is
// accepted).
type TunnelSource struct {
	Prefix  netip.Prefix
	Keyword string // "", TunnelSourcesOnLink or TunnelSourcesNone
}

// The keywords of datapath.tunnel-sources.
const (
	TunnelSourcesOnLink = "on-link"
	TunnelSourcesNone   = "none"
)

// UnmarshalText parses a prefix or a keyword.
func (s *TunnelSource) UnmarshalText(b []byte) error {
	str := string(b)
	if str == TunnelSourcesOnLink || str == TunnelSourcesNone {
		*s = TunnelSource{Keyword: str}
		return nil
	}
	p, err := netip.ParsePrefix(str)
	if err != nil {
		return fmt.Errorf("%q is neither a prefix nor %q or %q", str, TunnelSourcesOnLink, TunnelSourcesNone)
	}
	if p != p.Masked() {
		return fmt.Errorf("prefix %s has host bits set (did you mean %s?)", p, p.Masked())
	}
	*s = TunnelSource{Prefix: p}
	return nil
}

func (s TunnelSource) String() string {
	b, _ := s.MarshalText()
	return string(b)
}

// MarshalText writes the prefix or the keyword.
func (s TunnelSource) MarshalText() ([]byte, error) {
	if s.Keyword != "" {
		return []byte(s.Keyword), nil
	}
	return []byte(s.Prefix.String()), nil
}
