package config

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestPrefixFilter(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ge, le int
		canon  string
	}{
		{"0.0.0.0/0", 0, 0, "0.0.0.0/0"},
		{"::/0", 0, 0, "::/0"},
		{"10.0.0.0/8", 8, 8, "10.0.0.0/8"},
		{"10.0.0.0/8 ge 24", 24, 32, "10.0.0.0/8 ge 24 le 32"},
		{"10.0.0.0/8 le 24", 8, 24, "10.0.0.0/8 le 24"},
		{"10.0.0.0/8 ge 16 le 24", 16, 24, "10.0.0.0/8 ge 16 le 24"},
		{"10.0.0.0/8 le 24 ge 16", 16, 24, "10.0.0.0/8 ge 16 le 24"},
		{"  fd00:200::/40   le 64 ", 40, 64, "fd00:200::/40 le 64"},
		{"fd00:200::/40 ge 64 le 64", 64, 64, "fd00:200::/40 ge 64 le 64"},
		{"fd00:200::/40 ge 40", 40, 128, "fd00:200::/40 le 128"},
		{"10.0.0.0/8 ge 8 le 8", 8, 8, "10.0.0.0/8"},
	} {
		var f PrefixFilter
		if err := f.UnmarshalText([]byte(tc.in)); err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if f.GE != tc.ge || f.LE != tc.le {
			t.Errorf("%q: ge %d le %d, want ge %d le %d", tc.in, f.GE, f.LE, tc.ge, tc.le)
		}
		b, _ := f.MarshalText()
		if string(b) != tc.canon {
			t.Errorf("%q: MarshalText = %q, want %q", tc.in, b, tc.canon)
		}
		var again PrefixFilter
		if err := again.UnmarshalText(b); err != nil || again != f {
			t.Errorf("%q: round trip through %q gives %+v, %v", tc.in, b, again, err)
		}
	}
	for _, tc := range []struct{ in, msg string }{
		{"", "empty prefix filter"},
		{"   ", "empty prefix filter"},
		{"10.0.0.0", `invalid prefix "10.0.0.0"`},
		{"10.0.0.1/8", "has host bits set (did you mean 10.0.0.0/8?)"},
		{"10.0.0.0/8 ge", "the form is"},
		{"10.0.0.0/8 eq 9", "the form is"},
		{"10.0.0.0/8 ge 9 ge 10", "the form is"},
		{"10.0.0.0/8 ge x", "ge must be between 8 and 32"},
		{"10.0.0.0/8 ge 7", "ge must be between 8 and 32"},
		{"10.0.0.0/8 le 33", "le must be between 8 and 32"},
		{"::/0 le 129", "le must be between 0 and 128"},
		{"10.0.0.0/8 ge 24 le 16", "ge is above le"},
		{"10.0.0.0/8 le 16 ge 24", "ge is above le"},
		{"10.0.0.0/8 ge -1", "between"},
	} {
		var f PrefixFilter
		err := f.UnmarshalText([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.msg)
		}
	}
}

func TestPrefixFilterMatches(t *testing.T) {
	mustFilter := func(s string) PrefixFilter {
		var f PrefixFilter
		if err := f.UnmarshalText([]byte(s)); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		filter, route string
		want          bool
	}{
		{"::/0", "::/0", true},
		{"::/0", "fd00::/64", false},
		{"0.0.0.0/0", "::/0", false},
		{"0.0.0.0/0 le 32", "10.1.0.0/16", true},
		{"0.0.0.0/0 le 32", "fd00::/16", false},
		{"fd00:200::/40 ge 64 le 64", "fd00:200:1::/64", true},
		{"fd00:200::/40 ge 64 le 64", "fd00:200:1::/48", false},
		{"fd00:200::/40 ge 64 le 64", "fd00:300:1::/64", false},
		{"10.0.0.0/8 ge 24", "10.9.9.0/24", true},
		{"10.0.0.0/8 ge 24", "10.9.0.0/16", false},
		{"10.0.0.0/8", "10.0.0.0/8", true},
		{"10.0.0.0/8", "10.0.0.0/9", false},
	} {
		if got := mustFilter(tc.filter).Matches(netip.MustParsePrefix(tc.route)); got != tc.want {
			t.Errorf("%q matches %s = %v, want %v", tc.filter, tc.route, got, tc.want)
		}
	}
}

func TestStatusRange(t *testing.T) {
	for _, tc := range []struct {
		in       any
		min, max int
		text     string
	}{
		{int64(200), 200, 200, "200"},
		{"204", 204, 204, "204"},
		{"200-399", 200, 399, "200-399"},
		{" 200 - 299 ", 200, 299, "200-299"},
		{"100-599", 100, 599, "100-599"},
		{int64(599), 599, 599, "599"},
	} {
		var r StatusRange
		if err := r.decodeTOML(tc.in); err != nil {
			t.Errorf("%v: %v", tc.in, err)
			continue
		}
		if r.Min != tc.min || r.Max != tc.max {
			t.Errorf("%v: %+v, want %d-%d", tc.in, r, tc.min, tc.max)
		}
		if b, _ := r.MarshalText(); string(b) != tc.text {
			t.Errorf("%v: MarshalText = %q, want %q", tc.in, b, tc.text)
		}
	}
	for _, tc := range []struct {
		in  any
		msg string
	}{
		{int64(99), "codes are 100..599"},
		{int64(600), "codes are 100..599"},
		{"399-200", "low to high"},
		{"2xx", `invalid status range "2xx"`},
		{"200-", `invalid status range "200-"`},
		{"", `invalid status range ""`},
		{"200-300-400", "invalid status range"},
		{true, "expected a status code or range, found a boolean"},
		{2.5, "found a float"},
		{[]any{int64(200)}, "found an array"},
	} {
		var r StatusRange
		err := r.decodeTOML(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: error %v, want one containing %q", tc.in, err, tc.msg)
		}
	}
}

func TestPeerASN(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want PeerASN
		str  string
		json string
	}{
		{int64(65001), PeerASN{Number: 65001}, "65001", "65001"},
		{int64(4294967294), PeerASN{Number: 4294967294}, "4294967294", "4294967294"},
		{"external", PeerASN{Kind: "external"}, "external", `"external"`},
		{"internal", PeerASN{Kind: "internal"}, "internal", `"internal"`},
	} {
		var p PeerASN
		if err := p.decodeTOML(tc.in); err != nil {
			t.Errorf("%v: %v", tc.in, err)
			continue
		}
		if p != tc.want || !p.IsSet() || p.String() != tc.str {
			t.Errorf("%v: %+v (%s), want %+v (%s)", tc.in, p, p, tc.want, tc.str)
		}
		if b, err := json.Marshal(p); err != nil || string(b) != tc.json {
			t.Errorf("%v: JSON %s %v, want %s", tc.in, b, err, tc.json)
		}
	}
	if (PeerASN{}).IsSet() {
		t.Error("zero PeerASN is set")
	}
	for _, tc := range []struct {
		in  any
		msg string
	}{
		{"External", `invalid peer AS "External"`},
		{"65001", `invalid peer AS "65001"`},
		{int64(-1), "AS number -1 is outside 0..4294967295"},
		{int64(1 << 32), "AS number 4294967296 is outside"},
		{1.5, `expected an AS number (integer), "external" or "internal", found a float`},
		{true, "found a boolean"},
	} {
		var p PeerASN
		err := p.decodeTOML(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: error %v, want one containing %q", tc.in, err, tc.msg)
		}
	}
}

func TestReservedASN(t *testing.T) {
	for _, a := range []ASN{0, 23456, 64496, 64500, 64511, 65535, 65536, 65551, 65552, 100000, 131071, 4294967295} {
		if reservedASN(a) == "" {
			t.Errorf("AS %d is not reported as reserved", a)
		}
	}
	for _, a := range []ASN{1, 64495, 64512, 65001, 65534, 131072, 4200000000, 4294967294} {
		if why := reservedASN(a); why != "" {
			t.Errorf("AS %d is reported as reserved: %s", a, why)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"9s", 9 * time.Second},
		{"1m30s", 90 * time.Second},
		{"300ms", 300 * time.Millisecond},
		{"0s", 0},
		{"-5s", -5 * time.Second},
		{"100000h", 100000 * time.Hour},
		{"1.5h", 90 * time.Minute},
	} {
		var d Duration
		if err := d.decodeTOML(tc.in); err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if d.D() != tc.want {
			t.Errorf("%q = %v, want %v", tc.in, d.D(), tc.want)
		}
		if b, _ := d.MarshalText(); string(b) != tc.want.String() || d.String() != tc.want.String() {
			t.Errorf("%q: text %q, String %q", tc.in, b, d.String())
		}
	}
	for _, tc := range []struct {
		in  any
		msg string
	}{
		{int64(9), `expected a duration string with a unit such as "5s", found an integer`},
		{9.5, "found a float"},
		{"9", `invalid duration "9"`},
		{"1 h", `invalid duration "1 h"`},
		{"", `invalid duration ""`},
		{"10000000h", `invalid duration "10000000h"`}, // overflows int64 nanoseconds
	} {
		var d Duration
		err := d.decodeTOML(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: error %v, want one containing %q", tc.in, err, tc.msg)
		}
	}
}

func TestCleanParseMsg(t *testing.T) {
	for in, want := range map[string]string{
		`ParseAddr("10.0.0.300"): IPv4 field has value >255`:           `invalid address "10.0.0.300": IPv4 field has value >255`,
		`netip.ParsePrefix("10.0.0.0/33"): prefix length out of range`: `invalid prefix "10.0.0.0/33": prefix length out of range`,
		`netip.ParsePrefix("x/8"): ParseAddr("x"): unable to parse IP`: `invalid prefix "x/8": invalid address "x": unable to parse IP`,
		`ParseAddr("a\"): b"): unexpected character`:                   `invalid address "a\"): b": unexpected character`,
		`something else`: `something else`,
	} {
		if got := cleanParseMsg(in); got != want {
			t.Errorf("cleanParseMsg(%q) = %q, want %q", in, got, want)
		}
	}
}
