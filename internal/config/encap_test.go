package config_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/config"
)

// TestEncapSourcePrefixes: each outer source key takes its own family within
// its length range; the other family, or a length outside the range, is an
// error on that key that says what is wrong.
func TestEncapSourcePrefixes(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		want       string // "" : valid
	}{
		{"encap-source-prefix", "fd00:1::1:0/112", ""},
		{"encap-source-prefix", "fd00:1::/96", ""},
		{"encap-source-prefix", "fd00:1::1/128", ""},
		{"encap-source-prefix", "fd00:1::/95", "must be an IPv6 prefix of length 96 to 128"},
		{"encap-source-prefix", "10.0.1.0/24", "not IPv4 (the IPv4 outer source is lb.encap-source-prefix4)"},
		{"encap-source-prefix", "::ffff:10.0.1.0/120", `write the IPv4 outer source as IPv4 in lb.encap-source-prefix4 (here "10.0.1.0/24")`},
		{"encap-source-prefix4", "10.0.1.1/32", ""},
		{"encap-source-prefix4", "10.0.1.0/24", ""},
		{"encap-source-prefix4", "10.1.0.0/16", ""},
		{"encap-source-prefix4", "10.0.0.0/15", "must be an IPv4 prefix of length 16 to 32 (the low 16 bits at most vary with the flow)"},
		{"encap-source-prefix4", "fd00:1::1:0/112", "not IPv6 (the IPv6 outer source is lb.encap-source-prefix)"},
		{"encap-source-prefix4", "::ffff:10.0.1.1/128", `(here "10.0.1.1/32")`},
		{"encap-source-prefix4", "10.0.1.1/24", "has host bits set (did you mean 10.0.1.0/24?)"},
		{"encap-source-prefix4", "224.0.0.0/16", "is not a routable unicast prefix"},
		{"encap-source-prefix4", "169.254.0.0/16", "is not a routable unicast prefix"},
	} {
		src := fmt.Sprintf("[node]\nunderlay = [\"fd00:1::1\", \"10.0.1.1\"]\n[lb]\n%s = %q\n", tc.key, tc.value)
		c, err := config.Parse("f.toml", []byte(src))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s = %q: %v", tc.key, tc.value, err)
				continue
			}
			got := c.LB.EncapSourcePrefix
			if tc.key == "encap-source-prefix4" {
				got = c.LB.EncapSourcePrefix4
			}
			if got != netip.MustParsePrefix(tc.value) {
				t.Errorf("%s = %q parsed as %s", tc.key, tc.value, got)
			}
			continue
		}
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) != 1 {
			t.Errorf("%s = %q: got %v, want one error", tc.key, tc.value, err)
			continue
		}
		e := errs[0]
		if e.Key != "lb."+tc.key || e.Line != 4 || e.Col != 1 || !strings.Contains(e.Msg, tc.want) {
			t.Errorf("%s = %q: got %q, want f.toml:4:1: lb.%s: ...%s...", tc.key, tc.value, e.Error(), tc.key, tc.want)
		}
	}
}
