package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// validate checks the meaning of a decoded configuration and reports every
// problem through r.
func validate(r *reporter, c *Config) {
	v := &validator{r: r, c: c}
	v.include()
	v.node()
	v.datapath()
	v.bgp()
	v.ipam()
	v.lb()
	v.services()
	v.self()
	v.lbLimits()
	v.local()
}

type validator struct {
	r *reporter
	c *Config
	// included: c holds the services of one included file (the rest is
	// the main file's, already valid): only the checks of services run.
	included bool
	pools    *poolIndex // built on first use
	// seen and seenSize: the backend addresses of one service, and the
	// most the map has held since it was made (see addrSet)
	seen     map[netip.Addr]int
	seenSize int
}

func (v *validator) errf(path, format string, args ...any) { v.r.at(path, format, args...) }

// duration checks min <= d <= max; a zero minimum allows 0.
func (v *validator) duration(path string, d Duration, minimum, maximum time.Duration) {
	switch {
	case d < 0:
		v.errf(path, "duration %s is negative", d)
	case d.D() < minimum:
		v.errf(path, "duration %s is too short (at least %s)", d, minimum)
	case d.D() > maximum:
		v.errf(path, "duration %s is too long (at most %s)", d, maximum)
	}
}

func (v *validator) intIn(path string, n, minimum, maximum int64) bool {
	if n < minimum || n > maximum {
		v.errf(path, "%d is out of range %d..%d", n, minimum, maximum)
		return false
	}
	return true
}

func (v *validator) oneOf(path, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.errf(path, "invalid value %q: must be one of %s", got, quoteList(allowed))
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// ifname checks a Linux interface name: 1..15 bytes, no '/', ':' or space.
func (v *validator) ifname(path, name string) {
	switch {
	case name == "":
		v.errf(path, "interface name is empty")
	case len(name) > 15:
		v.errf(path, "interface name %q is %d bytes long; Linux allows at most 15", name, len(name))
	case strings.ContainsAny(name, "/: \t\n") || name == "." || name == "..":
		v.errf(path, "interface name %q contains a character Linux does not allow", name)
	}
}

// unicast checks that a is a usable unicast host address.
func (v *validator) unicast(path string, a netip.Addr, what string) bool {
	if msg := unicastProblem(a, what); msg != "" {
		v.errf(path, "%s", msg)
		return false
	}
	return true
}

// unicastProblem says what makes a no usable unicast host address, or "".
func unicastProblem(a netip.Addr, what string) string {
	switch {
	case !a.IsValid():
		return fmt.Sprintf("%s is required", what)
	case a.Zone() != "":
		return fmt.Sprintf("%s %s must not have a zone", what, a)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast() ||
		a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Sprintf("%s %s is not a routable unicast address", what, a)
	case a.Is4In6():
		return fmt.Sprintf("%s %s is an IPv4-mapped IPv6 address: write it as %s", what, a, a.Unmap())
	}
	return ""
}

// prefix checks that p has no host bits set.
func (v *validator) prefix(path string, p netip.Prefix) bool {
	if p != p.Masked() {
		v.errf(path, "prefix %s has host bits set (did you mean %s?)", p, p.Masked())
		return false
	}
	return true
}

func (v *validator) absPath(path, p, what string) {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		v.errf(path, "%s %q must be a clean absolute path", what, p)
	}
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
