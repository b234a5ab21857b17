package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

func (v *validator) services() {
	names := map[string]int{}
	vips := map[string]int{} // "vip/proto/port" -> service index
	for i := range v.c.Services {
		s := &v.c.Services[i]
		path := indexPath("services", i)
		if s.Name == "" {
			v.errf(path+".name", "service name is required")
		} else if j, dup := names[s.Name]; dup {
			v.errf(path+".name", "duplicate service name %q (also services[%d])", s.Name, j)
		} else {
			names[s.Name] = i
		}
		v.oneOf(path+".protocol", s.Protocol, "tcp", "udp")
		portOK := !v.r.failed(path+".port") && v.intIn(path+".port", int64(s.Port), 0, 65535)
		if !s.VIP.IsValid() && !v.r.failed(path+".vip") {
			v.poolVIP(path, s)
		} else if v.unicast(path+".vip", s.VIP, "vip") {
			v.explicitVIP(path, s)
			if portOK {
				v.vipUnique(path, i, s, vips)
			}
		}
		v.sourceRanges(path, s)
		v.communities(path+".communities", s.Communities)
		v.backends(path, s)
		v.healthCheck(path+".health-check", s)
	}
}

// vipUnique rejects a VIP used twice: the same vip, protocol and port, or a
// VIP-wide service (port 0) next to any other on the same VIP and protocol.
func (v *validator) vipUnique(path string, i int, s *Service, seen map[string]int) {
	key := func(port int) string { return fmt.Sprintf("%s/%s/%d", s.VIP, s.Protocol, port) }
	anyPort := fmt.Sprintf("%s/%s/any", s.VIP, s.Protocol) // the earliest service on the VIP
	if j, dup := seen[key(s.Port)]; dup {
		v.errf(path+".vip", "VIP %s %s port %d is already used by services[%d]", s.VIP, s.Protocol, s.Port, j)
		return
	}
	if first, used := seen[anyPort]; used && s.Port == 0 {
		v.errf(path+".port", "VIP-wide service (port 0) on %s %s conflicts with services[%d] on the same VIP", s.VIP, s.Protocol, first)
		return
	} else if j, dup := seen[key(0)]; dup {
		v.errf(path+".port", "services[%d] already takes every %s port of VIP %s (port 0)", j, s.Protocol, s.VIP)
		return
	}
	seen[key(s.Port)] = i
	if _, used := seen[anyPort]; !used {
		seen[anyPort] = i
	}
}

func (v *validator) sourceRanges(path string, s *Service) {
	for i, p := range s.AllowSources {
		pp := indexPath(path+".allow-sources", i)
		if v.prefix(pp, p) && s.VIP.IsValid() && p.Addr().Is4() != s.VIP.Is4() {
			v.errf(pp, "source range %s is %s but the VIP %s is %s", p, family(p.Addr()), s.VIP, family(s.VIP))
		}
	}
}

// backends checks addresses and weights. Every backend of a service is
// reached over one underlay family: an IPv6 VIP needs IPv6 backends (IPv6 in
// IPv6); an IPv4 VIP may use IPv4 (IPv4 in IPv4) or IPv6 backends (IPv4 in
// IPv6), but not both at once.
func (v *validator) backends(path string, s *Service) {
	seen := v.addrSet(len(s.Backends))
	first := -1
	for i, b := range s.Backends {
		// Paths are built for errors only: a service may have thousands
		// of backends, a file a million.
		bp := func(key string) string { return indexPath(path+".backends", i) + "." + key }
		if b.Weight < 0 || b.Weight > 65535 {
			v.intIn(bp("weight"), int64(b.Weight), 0, 65535)
		}
		if unicastProblem(b.Address, "") != "" {
			v.unicast(bp("address"), b.Address, "backend address")
			continue
		}
		if j, dup := seen[b.Address]; dup {
			v.errf(bp("address"), "backend %s is listed twice (also backends[%d])", b.Address, j)
			continue
		}
		seen[b.Address] = i
		switch {
		case s.VIP.Is6() && b.Address.Is4():
			v.errf(bp("address"), "address family mismatch: IPv6 VIP %s cannot be carried to IPv4 backend %s", s.VIP, b.Address)
			continue // not the service's family: do not compare the others with it
		case first >= 0 && s.Backends[first].Address.Is4() != b.Address.Is4():
			v.errf(bp("address"), "address family mismatch: backend %s is %s but backends[%d] (%s) is %s; one service uses one underlay family",
				b.Address, family(b.Address), first, s.Backends[first].Address, family(s.Backends[first].Address))
		case b.Address == s.VIP:
			v.errf(bp("address"), "backend address %s is the VIP itself", b.Address)
		}
		if first < 0 {
			first = i
		}
	}
}

// addrSet returns an empty map for the backends of one service. One map
// serves every service (a map per service was a tenth of a load of 10,000
// services); it is made anew when the last service was much larger than
// this one, so that emptying it costs in proportion to this service.
func (v *validator) addrSet(n int) map[netip.Addr]int {
	if v.seen == nil || v.seenSize > 2*n+64 {
		v.seen, v.seenSize = make(map[netip.Addr]int, n), n
		return v.seen
	}
	clear(v.seen)
	v.seenSize = max(v.seenSize, n)
	return v.seen
}

func (v *validator) healthCheck(path string, s *Service) {
	hc := &s.HealthCheck
	v.oneOf(path+".type", hc.Type, "none", "tcp", "http")
	if hc.Type == "none" {
		return
	}
	v.oneOf(path+".via", hc.Via, "tunnel", "direct")
	if hc.Port == 0 {
		// A service port that is invalid was reported already; only a
		// VIP-wide service (port 0) has no port to default to.
		if s.Port == 0 && !v.r.failed(strings.TrimSuffix(path, ".health-check")+".port") {
			v.errf(path+".port", "a VIP-wide service (port 0) needs health-check.port for a %s check", hc.Type)
		}
	} else {
		v.intIn(path+".port", int64(hc.Port), 1, 65535)
	}
	if hc.Type == "http" && !strings.HasPrefix(hc.Path, "/") {
		v.errf(path+".path", "HTTP path %q must start with '/'", hc.Path)
	}
	if hc.Type == "http" && s.Protocol == "udp" {
		v.errf(path+".type", "an HTTP check needs a TCP service")
	}
	v.duration(path+".interval", hc.Interval, 100*time.Millisecond, time.Hour)
	v.duration(path+".timeout", hc.Timeout, 10*time.Millisecond, time.Hour)
	if hc.Timeout >= hc.Interval && hc.Interval > 0 {
		v.errf(path+".timeout", "timeout %s must be shorter than interval %s", hc.Timeout, hc.Interval)
	}
	v.intIn(path+".rise", int64(hc.Rise), 1, 100)
	v.intIn(path+".fall", int64(hc.Fall), 1, 100)
}
