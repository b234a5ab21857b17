package config

import (
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

// loopbackListen accepts only loopback listen addresses: the API has no
// authentication of its own beyond the socket's file permissions.
func (v *validator) loopbackListen(path, s string) {
	a, ok := v.hostPort(path, s)
	if ok && !a.IsLoopback() {
		v.errf(path, "the API may only listen on a loopback address (it has no authentication), not %q", s)
	}
}
