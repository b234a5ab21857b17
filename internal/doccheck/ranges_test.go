package doccheck

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
)

// rangeCell matches an "allowed" cell that starts with a range of integers
// or durations: "0–65535", "10ms–10s", "3s–65535s (…)", "0–21845s, …".
var rangeCell = regexp.MustCompile(`^([0-9a-z.]+)–([0-9a-z.]+)([ ,;(]|$)`)

// rangeContext are other keys a bound needs to be valid (written in the
// same section): a hold time of 3s needs a shorter keepalive.
var rangeContext = map[string]string{
	"bgp.hold-time":                  `keepalive-time = "1s"`,
	"bgp.keepalive-time":             `hold-time = "65535s"`,
	"services.health-check.interval": `health-check.timeout = "10ms"`,
}

// rangeNoUpper are keys whose documented upper bound a further rule of
// the same row makes unreachable.
var rangeNoUpper = map[string]string{
	"services.health-check.timeout": "shorter than interval, which is at most 1h",
	"api.socket-mode":               "not writable by others: 0o775 is the largest mode taken",
}

// TestDocumentedRanges: every integer or duration range docs/configuration.md
// gives ("allowed" column, "LOW–HIGH") is what the parser takes: both
// bounds are accepted, one below the low and one above the high bound are
// refused with an error at the key.
func TestDocumentedRanges(t *testing.T) {
	rows := referenceRows(t)
	n := 0
	for _, r := range rows {
		typ := r.Cells["type"]
		if typ != "integer" && typ != "duration" {
			continue
		}
		m := rangeCell.FindStringSubmatch(r.Cells["allowed"])
		if m == nil {
			continue
		}
		lo, hi, below, above, err := bounds(typ, m[1], m[2])
		if err != nil {
			t.Errorf("docs/configuration.md:%d: %s: range %s–%s: %v", r.Line, r.Key, m[1], m[2], err)
			continue
		}
		n++
		check := func(value string, valid bool) {
			src := fileWith(t, r.Key, value+"\n"+rangeContext[r.Key])
			_, err := config.Parse("range.toml", []byte(src))
			switch {
			case valid && err != nil:
				t.Errorf("docs/configuration.md:%d: %s = %s is documented as allowed, but: %v", r.Line, r.Key, value, err)
			case !valid && err == nil:
				t.Errorf("docs/configuration.md:%d: %s = %s is outside the documented %s–%s, but accepted", r.Line, r.Key, value, m[1], m[2])
			case !valid && !strings.Contains(err.Error(), keyInError(r.Key)):
				t.Errorf("docs/configuration.md:%d: %s = %s: the error does not name the key: %v", r.Line, r.Key, value, err)
			}
		}
		check(lo, true)
		check(below, false)
		if why, ok := rangeNoUpper[r.Key]; ok {
			t.Logf("%s: upper bound not tried: %s", r.Key, why)
			continue
		}
		check(hi, true)
		check(above, false)
	}
	if n < 25 {
		t.Errorf("only %d documented ranges found: is the reader broken?", n)
	}
}

// bounds returns the range's bounds and the values just outside it, as
// TOML values of the type.
func bounds(typ, low, high string) (lo, hi, below, above string, err error) {
	if typ == "integer" {
		l, err1 := strconv.ParseInt(low, 0, 64)
		h, err2 := strconv.ParseInt(high, 0, 64)
		if err1 != nil || err2 != nil {
			return "", "", "", "", fmt.Errorf("not integers")
		}
		return fmt.Sprint(l), fmt.Sprint(h), fmt.Sprint(l - 1), fmt.Sprint(h + 1), nil
	}
	if low == "0" {
		low = "0s"
	}
	l, err1 := time.ParseDuration(low)
	h, err2 := time.ParseDuration(high)
	if err1 != nil || err2 != nil {
		return "", "", "", "", fmt.Errorf("not durations")
	}
	q := func(d time.Duration) string { return strconv.Quote(d.String()) }
	return q(l), q(h), q(l - time.Nanosecond), q(h + time.Nanosecond), nil
}

// keyInError is how an error names a key of the base file: its path with
// the index of the one element of each array of tables.
func keyInError(key string) string {
	out := key
	for _, s := range baseSections { // outer arrays come before inner ones
		if strings.HasPrefix(s.header, "[[") && strings.HasPrefix(key, s.table+".") {
			out = strings.Replace(out, s.table[strings.LastIndex(s.table, ".")+1:]+".", s.table[strings.LastIndex(s.table, ".")+1:]+"[0].", 1)
		}
	}
	return out
}

// choiceCell matches an "allowed" cell that is a list of strings:
// "`\"auto\"`, `\"native\"`, `\"generic\"`", "`\"tcp\"`, `\"udp\"`".
var (
	choiceCell = regexp.MustCompile("^`\"[a-z0-9-]+\"`(, `\"[a-z0-9-]+\"`)+( \\(.*\\))?$")
	choice     = regexp.MustCompile("`(\"[a-z0-9-]+\")`")
)

// TestDocumentedChoices: every string key whose values docs/configuration.md
// lists takes each of them, and refuses another with an error at the key.
func TestDocumentedChoices(t *testing.T) {
	rows := referenceRows(t)
	n := 0
	for _, r := range rows {
		if r.Cells["type"] != "string" || !choiceCell.MatchString(r.Cells["allowed"]) {
			continue
		}
		n++
		for _, m := range choice.FindAllStringSubmatch(r.Cells["allowed"], -1) {
			// Other rules may refuse the rest of the file (a pool of kind
			// "vm" leaves the service's VIP outside every service pool);
			// the value itself must not be refused.
			if _, err := config.Parse("choice.toml", []byte(fileWith(t, r.Key, m[1]))); err != nil &&
				strings.Contains(err.Error(), keyInError(r.Key)+":") {
				t.Errorf("docs/configuration.md:%d: %s = %s is documented as allowed, but: %v", r.Line, r.Key, m[1], err)
			}
		}
		_, err := config.Parse("choice.toml", []byte(fileWith(t, r.Key, `"bogus"`)))
		if err == nil || !strings.Contains(err.Error(), keyInError(r.Key)) {
			t.Errorf("docs/configuration.md:%d: %s = \"bogus\" is not one of the documented values, but: %v", r.Line, r.Key, err)
		}
	}
	if n < 8 {
		t.Errorf("only %d documented choices found: is the reader broken?", n)
	}
}

// lengthCell finds a length bound in an "allowed" cell: "1–253 bytes",
// "(1–15 bytes", "at most 107 bytes".
var lengthCell = regexp.MustCompile(`(?:\b1–|at most )(\d+) bytes`)

// TestDocumentedLengths: every string length bound docs/configuration.md
// gives is the parser's: a value of that many bytes is taken, one byte
// more is refused at the key.
func TestDocumentedLengths(t *testing.T) {
	rows := referenceRows(t)
	n := 0
	for _, r := range rows {
		typ, allowed := r.Cells["type"], r.Cells["allowed"]
		m := lengthCell.FindStringSubmatch(allowed)
		if m == nil || (typ != "string" && typ != "array of strings") {
			continue
		}
		max, _ := strconv.Atoi(m[1])
		value := func(n int) string {
			s := strings.Repeat("a", n)
			if strings.Contains(allowed, "absolute path") {
				s = "/" + strings.Repeat("a", n-1)
			}
			if typ == "array of strings" {
				return `["` + s + `"]`
			}
			return strconv.Quote(s)
		}
		n++
		t.Logf("%s: at most %d bytes", r.Key, max)
		key := keyInError(r.Key)
		for _, c := range []struct {
			len   int
			valid bool
		}{{max, true}, {max + 1, false}} {
			src := fileWith(t, r.Key, value(c.len))
			if r.Key == "bgp.peers.interface" { // a peer has an address or an interface
				src = strings.Replace(src, "address = \"fd00:1::2\"\n", "", 1)
			}
			_, err := config.Parse("length.toml", []byte(src))
			named := err != nil && strings.Contains(err.Error(), key)
			if c.valid && named {
				t.Errorf("docs/configuration.md:%d: %s of %d bytes is documented as allowed, but: %v", r.Line, r.Key, c.len, err)
			}
			if !c.valid && !named {
				t.Errorf("docs/configuration.md:%d: %s of %d bytes is over the documented %d, but: %v", r.Line, r.Key, c.len, max, err)
			}
		}
	}
	if n < 4 {
		t.Errorf("only %d documented lengths found: is the reader broken?", n)
	}
}
