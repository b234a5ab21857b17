package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// LBServiceStats is the traffic of one service in GET /v1/lb/stats: the
// packets and bytes to its VIP, port and protocol that the data plane
// picked a backend for, and those sent to each of its backends, summed over
// CPUs. Bytes are whole frames as received, Ethernet header included.
type LBServiceStats struct {
	Name     string           `json:"name"`
	VIP      netip.Addr       `json:"vip"`
	Port     int              `json:"port"`
	Protocol string           `json:"protocol"`
	Packets  uint64           `json:"packets"`
	Bytes    uint64           `json:"bytes"`
	Backends []LBBackendStats `json:"backends"`
}

// LBBackendStats is the traffic sent to one backend. A backend address in
// several services has one counter: each of them shows the total.
type LBBackendStats struct {
	Address netip.Addr `json:"address"`
	Packets uint64     `json:"packets"`
	Bytes   uint64     `json:"bytes"`
}

// VIPSelector picks services by VIP: an address, optionally narrowed to a
// port and a protocol (GET /v1/lb/stats?vip=..., airctl lb stats --vip).
type VIPSelector struct {
	Addr     netip.Addr
	Port     int    // -1: every port
	Protocol string // "": every protocol
}

// ParseVIPSelector parses ADDRESS, ADDRESS:PORT or [IPv6]:PORT, each
// optionally followed by /tcp or /udp (ADDRESS/PROTO too). Port "any" is
// port 0, a VIP-wide service.
func ParseVIPSelector(s string) (VIPSelector, error) {
	bad := func(why string) (VIPSelector, error) {
		return VIPSelector{}, fmt.Errorf("bad VIP %q: %s; use ADDRESS, ADDRESS:PORT/PROTO or [IPv6]:PORT/PROTO", s, why)
	}
	sel := VIPSelector{Port: -1}
	rest := s
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		rest, sel.Protocol = s[:i], s[i+1:]
		if sel.Protocol != "tcp" && sel.Protocol != "udp" {
			return bad(fmt.Sprintf("protocol %q is not tcp or udp", sel.Protocol))
		}
	}
	host, port, hasPort := rest, "", false
	if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		host = rest[1 : len(rest)-1]
	}
	if _, err := netip.ParseAddr(host); err != nil {
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			return bad("not an address")
		}
		host, port, hasPort = h, p, true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return bad(fmt.Sprintf("%q is not an address", host))
	}
	sel.Addr = a.Unmap()
	switch {
	case !hasPort:
	case port == "any":
		sel.Port = 0
	default:
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return bad(fmt.Sprintf("port %q is not a number from 0 to 65535", port))
		}
		sel.Port = int(p)
	}
	return sel, nil
}

// Matches reports whether the service (vip, port, protocol) is selected.
func (v VIPSelector) Matches(vip netip.Addr, port int, protocol string) bool {
	return vip.Unmap() == v.Addr && (v.Port < 0 || v.Port == port) && (v.Protocol == "" || v.Protocol == protocol)
}

// String returns the selector in the syntax ParseVIPSelector reads.
func (v VIPSelector) String() string {
	s := v.Addr.String()
	if v.Port >= 0 {
		s = netip.AddrPortFrom(v.Addr, uint16(v.Port)).String()
	}
	if v.Protocol != "" {
		s += "/" + v.Protocol
	}
	return s
}

// lbStats answers GET /v1/lb/stats[?vip=...&name=...]. A malformed
// selector is refused before the counters are read; a selection that
// matches no service is an error.
func lbStats(r *http.Request, b LBBackend) (LBStats, error) {
	q, err := parseLBServiceQuery(r)
	if err != nil {
		return LBStats{}, err
	}
	if q.After != "" || q.Limit != 0 || q.Backends {
		return LBStats{}, fmt.Errorf("lb stats selects by vip= and name= only (pages and backends: GET /v1/lb/services)")
	}
	st, err := b.LBStats(q)
	if err != nil {
		return LBStats{}, err
	}
	if (q.VIP != nil || q.Name != "") && len(st.Services) == 0 && q.After == "" {
		if q.VIP == nil {
			return LBStats{}, fmt.Errorf("lb stats: no service %q", q.Name)
		}
		hint := ""
		if q.VIP.Addr.Is6() && q.VIP.Port < 0 {
			hint = " (an IPv6 VIP with a port is written [ADDRESS]:PORT/PROTO)"
		}
		return LBStats{}, fmt.Errorf("lb stats: no service on VIP %s%s", q.VIP, hint)
	}
	return st, nil
}
