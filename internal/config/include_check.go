package config

import (
	"fmt"
	"net/netip"
	"slices"
)

// svcRef is one service: its file (an index of units) and its index there.
type svcRef struct{ unit, index int }

// crossCheck checks the services of several files against each other:
// each file is valid on its own (the main file by validate, the included
// ones by buildIncluded), so what is left is what spans files: service
// names, VIP, protocol and port, the data plane's limits over all
// services, a backend that is another file's VIP, and a BGP peer that is
// an included file's VIP. It costs in proportion to the services and the
// distinct backend addresses of each file, not to the backends. Errors
// carry the key path in their file (no line: see Loader.locate).
func crossCheck(main *Config, units []*unit) Errors {
	x := &crossChecker{main: main, units: units}
	x.limits()
	x.namesAndVIPs()
	x.backendVIPs()
	x.peers()
	return x.errs
}

type crossChecker struct {
	main  *Config
	units []*unit
	vips  map[netip.Addr]svcRef // VIP -> the first service with it
	errs  Errors
}

func (x *crossChecker) errf(u int, path, format string, args ...any) {
	if len(x.errs) < MaxErrors {
		x.errs = append(x.errs, &Error{File: x.units[u].file, Key: path, Msg: fmt.Sprintf(format, args...)})
	}
}

// where names a service for a message: services[i] of its file.
func (x *crossChecker) where(r svcRef) string {
	return fmt.Sprintf("services[%d] in %s", r.index, x.units[r.unit].file)
}

// limits checks lb.max-vips, lb.max-backends and the allow-list room over
// every file.
func (x *crossChecker) limits() {
	l := &x.main.LB
	total, allow, backends := 0, 0, 0
	for _, u := range x.units {
		total += len(u.services)
		allow += u.allow
		backends += len(u.backends)
	}
	if total > l.MaxVIPs {
		r := x.nth(l.MaxVIPs)
		x.errf(r.unit, indexPath("services", r.index), "%d services in all files exceed lb.max-vips = %d (one vip id per service); raise lb.max-vips", total, l.MaxVIPs)
	}
	if allow > MaxAllowEntries {
		x.errf(0, "", "%d allow-sources entries in all files: the data plane holds %d over all services", allow, MaxAllowEntries)
	}
	if backends <= l.MaxBackends { // the distinct addresses of all files are at most the sum
		return
	}
	seen := make(map[netip.Addr]bool, l.MaxBackends+1)
	for ui, u := range x.units {
		for _, a := range u.backends {
			if seen[a] {
				continue
			}
			if seen[a] = true; len(seen) == l.MaxBackends+1 {
				si, bi := u.find(func(s *Service, b Backend) bool { return b.Address == a })
				x.errf(ui, indexPath(indexPath("services", si)+".backends", bi)+".address",
					"backend %s is distinct backend address number %d over all files, over lb.max-backends = %d (one backend id per address); raise lb.max-backends",
					a, len(seen), l.MaxBackends)
				return
			}
		}
	}
}

// nth is the n-th service over all files (0-based).
func (x *crossChecker) nth(n int) svcRef {
	for ui, u := range x.units {
		if n < len(u.services) {
			return svcRef{ui, n}
		}
		n -= len(u.services)
	}
	return svcRef{}
}

// vipKey is a service's VIP, protocol and port; port -1 stands for "any
// service on the VIP and protocol".
type vipKey struct {
	vip   netip.Addr
	proto string
	port  int
}

// namesAndVIPs rejects a service name, or a VIP, protocol and port, used
// in two files, and a VIP-wide service (port 0) next to another service
// of the same VIP and protocol in another file. The later one is the
// error; the message names the earlier one.
func (x *crossChecker) namesAndVIPs() {
	n := 0
	for _, u := range x.units {
		n += len(u.services)
	}
	names := make(map[string]svcRef, n)
	seen := make(map[vipKey]svcRef, 2*n)
	x.vips = make(map[netip.Addr]svcRef, n)
	for ui, u := range x.units {
		for i := range u.services {
			s, ref := &u.services[i], svcRef{ui, i}
			path := indexPath("services", i)
			if o, dup := names[s.Name]; dup {
				x.errf(ui, path+".name", "duplicate service name %q (also %s)", s.Name, x.where(o))
			} else {
				names[s.Name] = ref
			}
			if !s.VIP.IsValid() { // from a pool: the daemon allocates a VIP of its own
				continue
			}
			if _, ok := x.vips[s.VIP]; !ok {
				x.vips[s.VIP] = ref
			}
			exact, anyPort, wide := vipKey{s.VIP, s.Protocol, s.Port}, vipKey{s.VIP, s.Protocol, -1}, vipKey{s.VIP, s.Protocol, 0}
			if o, dup := seen[exact]; dup {
				x.errf(ui, path+".vip", "VIP %s %s port %d is already used by %s", s.VIP, s.Protocol, s.Port, x.where(o))
				continue
			}
			if o, used := seen[anyPort]; used && s.Port == 0 {
				x.errf(ui, path+".port", "VIP-wide service (port 0) on %s %s conflicts with %s on the same VIP", s.VIP, s.Protocol, x.where(o))
				continue
			} else if o, dup := seen[wide]; dup {
				x.errf(ui, path+".port", "%s already takes every %s port of VIP %s (port 0)", x.where(o), s.Protocol, s.VIP)
				continue
			}
			seen[exact] = ref
			if _, used := seen[anyPort]; !used {
				seen[anyPort] = ref
			}
		}
	}
}

// backendVIPs rejects a backend that is the VIP of a service in another
// file: flows would loop through the load balancer. (Within a file, self
// checks it.)
func (x *crossChecker) backendVIPs() {
	for ui, u := range x.units {
		for _, a := range u.backends {
			o, hit := x.vips[a]
			if !hit || o.unit == ui {
				continue
			}
			si, bi := u.find(func(s *Service, b Backend) bool { return b.Address == a && s.VIP != a })
			if si < 0 {
				continue
			}
			x.errf(ui, indexPath(indexPath("services", si)+".backends", bi)+".address",
				"backend %s is the VIP of %s: flows would loop through the load balancer", a, x.where(o))
		}
	}
}

// peers rejects a BGP peer whose address is the VIP of an included file's
// service (the main file's own are checked by self).
func (x *crossChecker) peers() {
	if x.main.BGP == nil {
		return
	}
	for i, p := range x.main.BGP.Peers {
		if o, hit := x.vips[p.Address.WithZone("")]; hit && p.Address.IsValid() && o.unit > 0 {
			x.errf(0, indexPath("bgp.peers", i)+".address", "peer address %s is the VIP of %s, which this node answers itself", p.Address, x.where(o))
		}
	}
}

// find returns the first service and backend of u for which match holds,
// or -1, -1.
func (u *unit) find(match func(*Service, Backend) bool) (int, int) {
	for i := range u.services {
		if j := slices.IndexFunc(u.services[i].Backends, func(b Backend) bool { return match(&u.services[i], b) }); j >= 0 {
			return i, j
		}
	}
	return -1, -1
}
