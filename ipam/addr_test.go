package ipam

import (
	"net/netip"
	"testing"
)

func TestExcluded(t *testing.T) {
	for _, c := range []struct {
		prefix, addr string
		want         bool
	}{
		{"10.0.0.0/24", "10.0.0.0", true},
		{"10.0.0.0/24", "10.0.0.255", true},
		{"10.0.0.0/24", "10.0.0.1", false},
		{"10.0.0.0/24", "10.0.0.254", false},
		{"10.0.0.4/30", "10.0.0.7", true},
		{"10.0.0.4/31", "10.0.0.4", false}, // RFC 3021: both usable
		{"10.0.0.4/31", "10.0.0.5", false},
		{"10.0.0.9/32", "10.0.0.9", false},
		{"fd00::/64", "fd00::", true},   // Subnet-Router anycast
		{"fd00::/64", "fd00::1", false}, // first host
		{"fd00::/64", "fd00::ffff:ffff:ffff:ff7f", false},
		{"fd00::/64", "fd00::ffff:ffff:ffff:ff80", true}, // RFC 2526
		{"fd00::/64", "fd00::ffff:ffff:ffff:ffff", true},
		{"fd00::/48", "fd00:0:0:5::", true}, // every /64's anycast
		{"fd00::/48", "fd00:0:0:5:ffff:ffff:ffff:fffe", true},
		{"fd00::/120", "fd00::", true},
		{"fd00::/120", "fd00::ff", false}, // no /64 inside: only the first is special
		{"fd00::7/128", "fd00::7", true},
	} {
		p, a := netip.MustParsePrefix(c.prefix), netip.MustParseAddr(c.addr)
		if got := excluded(p, a); got != c.want {
			t.Errorf("excluded(%s, %s) = %v, want %v", p, a, got, c.want)
		}
	}
}

func TestNextJumpsReservedTop(t *testing.T) {
	p := netip.MustParsePrefix("fd00::/48")
	n, ok := next(p, netip.MustParseAddr("fd00::ffff:ffff:ffff:ff80"))
	if !ok || n != netip.MustParseAddr("fd00:0:0:1::") {
		t.Fatalf("next over the reserved top = %s %v, want fd00:0:0:1:: true", n, ok)
	}
	if n, ok := next(p, netip.MustParseAddr("fd00:0:ffff:ffff:ffff:ffff:ffff:ff90")); ok {
		t.Fatalf("next past the end of %s = %s, want end", p, n)
	}
	if n, ok := next(netip.MustParsePrefix("10.1.0.0/24"), netip.MustParseAddr("10.1.0.255")); ok {
		t.Fatalf("next past 10.1.0.0/24 = %s, want end", n)
	}
	all := netip.MustParsePrefix("::/0")
	if n, ok := next(all, netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff80")); ok {
		t.Fatalf("next past ::/0 = %s, want end", n)
	}
}

func TestCapacity(t *testing.T) {
	for _, c := range []struct{ prefix, want string }{
		{"10.0.0.0/24", "254"},
		{"10.0.0.0/30", "2"},
		{"10.0.0.0/31", "2"},
		{"10.0.0.0/32", "1"},
		{"fd00::/120", "255"},
		{"fd00::/128", "0"},
		{"fd00::/64", "18446744073709551487"},      // 2^64 - 129
		{"fd00::/63", "36893488147419102974"},      // 2 * (2^64 - 129)
		{"fd00::/48", "1208925819614629166252032"}, // 2^16 * (2^64 - 129)
	} {
		if got := capacity(netip.MustParsePrefix(c.prefix)).String(); got != c.want {
			t.Errorf("capacity(%s) = %s, want %s", c.prefix, got, c.want)
		}
	}
}

func TestLastAddr(t *testing.T) {
	for p, want := range map[string]string{
		"10.0.0.0/24": "10.0.0.255", "10.0.0.0/32": "10.0.0.0", "0.0.0.0/0": "255.255.255.255",
		"fd00::/64": "fd00::ffff:ffff:ffff:ffff", "fd00::/127": "fd00::1",
	} {
		if got := lastAddr(netip.MustParsePrefix(p)).String(); got != want {
			t.Errorf("lastAddr(%s) = %s, want %s", p, got, want)
		}
	}
}
