package lb

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/aird-net/aird/lb/health"
)

// A service's backends are distinct by address, an IPv4 address and its
// IPv4-mapped IPv6 form being one address; a duplicate or a missing
// address is named in the error whichever way validate finds it.
func TestServiceValidateBackends(t *testing.T) {
	for _, tc := range []struct {
		addrs []string
		want  string // "" valid, else a part of the error
	}{
		{[]string{"fd00::1", "fd00::2", "10.0.0.1"}, ""},
		{[]string{"fd00::1%eth0", "fd00::1%eth1", "fd00::2"}, ""},
		{[]string{"fd00::2", "fd00::1", "fd00::2"}, "backend fd00::2 listed twice"},
		{[]string{"10.0.0.1", "::ffff:10.0.0.1"}, "backend ::ffff:10.0.0.1 listed twice"},
		{[]string{"fd00::1%eth0", "fd00::1%eth0"}, "backend fd00::1%eth0 listed twice"},
		{[]string{"fd00::1", ""}, "a backend without an address"},
		{nil, ""},
	} {
		s := Service{Name: "s", VIP: netip.MustParseAddr("fd00:300::10"), Protocol: "tcp", Port: 80}
		s.HealthCheck.Type = health.TypeNone
		for _, a := range tc.addrs {
			var b Backend
			if a != "" {
				b.Address = netip.MustParseAddr(a)
			}
			s.Backends = append(s.Backends, b)
		}
		err := s.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.addrs, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one saying %q", tc.addrs, err, tc.want)
		}
	}
}
