package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// hostPort checks a "host:port" listen address with a numeric port.
func (v *validator) hostPort(path, s string) (netip.Addr, bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errf(path, "invalid listen address %q: use host:port, for example \"127.0.0.1:9469\" or \"[::1]:9469\"", s)
		return netip.Addr{}, false
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		v.errf(path, "invalid port %q in %q: must be 1..65535", port, s)
		return netip.Addr{}, false
	}
	if host == "" {
		return netip.IPv6Unspecified(), true
	}
	if host == "localhost" {
		return netip.IPv6Loopback(), true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		v.errf(path, "invalid listen address %q: the host must be an IP address", s)
		return netip.Addr{}, false
	}
	return a, true
}

// encapSource checks an outer source prefix of encapsulated packets (unset
// is fine): lb.encap-source-prefix is IPv6 /96../128 (at most the low 32
// bits vary with the flow, as the data plane varies), lb.encap-source-prefix4
// (v4) is IPv4 /16../32 (at most the low 16 bits vary). Each key takes its
// own family only; a prefix of the other family names the key it belongs in.
func (v *validator) encapSource(path string, p netip.Prefix, v4 bool) {
	if !p.IsValid() {
		return
	}
	fam, minBits, maxBits, other, otherKey := "IPv6", 96, 128, "IPv4", "lb.encap-source-prefix4"
	if v4 {
		fam, minBits, maxBits, other, otherKey = "IPv4", 16, 32, "IPv6", "lb.encap-source-prefix"
	}
	a := p.Addr()
	switch {
	case a.Is4In6():
		hint := "an IPv4 prefix"
		if p.Bits() >= 96 {
			hint = fmt.Sprintf("%q", netip.PrefixFrom(a.Unmap(), p.Bits()-96))
		}
		v.errf(path, "%s is an IPv4-mapped IPv6 prefix: write the IPv4 outer source as IPv4 in lb.encap-source-prefix4 (here %s)", p, hint)
	case a.Is4() != v4:
		v.errf(path, "%s must be an %s prefix of length %d to %d, not %s (the %s outer source is %s)", p, fam, minBits, maxBits, other, other, otherKey)
	case !v.prefix(path, p):
	case p.Bits() < minBits:
		v.errf(path, "%s must be an %s prefix of length %d to %d (the low %d bits at most vary with the flow)", p, fam, minBits, maxBits, maxBits-minBits)
	case !a.IsGlobalUnicast():
		v.errf(path, "%s is not a routable unicast prefix", p)
	}
}
