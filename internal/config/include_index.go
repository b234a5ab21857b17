package config

import "net/netip"

// crossIndex is what the checks across files found in the last load that
// passed them: which file holds each service name, VIP, protocol and port,
// VIP and distinct backend address. With it, a reload that changes a few
// included files (and not the main file) checks only those files' services
// against the others (crossIndex.update) instead of every service. It is a
// fast path only: whenever the changed files touch anything another file
// holds, the Loader runs crossCheck over all files, which decides and
// words the errors, and rebuilds the index.
type crossIndex struct {
	units    map[string]*unit     // by index key (unitKey), as checked
	names    map[string]string    // service name -> file key
	exact    map[vipKey]string    // VIP, protocol, port -> file key
	vipProto map[vipKey][]portUse // VIP, protocol (port -1) -> the files using it
	vips     map[netip.Addr][]use // VIP -> the files with a service on it
	backends map[netip.Addr][]use // distinct backend address -> the files with it
	peers    map[netip.Addr]bool  // the BGP peers' addresses (of the main file, unchanged)
}

// use counts one file's uses of a key.
type use struct {
	file string
	n    int
}

// portUse counts one file's services on a VIP and protocol, and whether
// one of them takes every port.
type portUse struct {
	use
	wide int
}

// mainKey is the index key of the main file's services (an included file
// may not have that name).
const mainKey = "\x00main"

// unitKey is the index key of units[i].
func unitKey(units []*unit, i int) string {
	if i == 0 {
		return mainKey
	}
	return units[i].file
}

// newCrossIndex indexes units that passed crossCheck.
func newCrossIndex(main *Config, units []*unit) *crossIndex {
	n := 0
	for _, u := range units {
		n += len(u.services)
	}
	x := &crossIndex{units: make(map[string]*unit, len(units)), names: make(map[string]string, n),
		exact: make(map[vipKey]string, n), vipProto: make(map[vipKey][]portUse, n),
		vips: make(map[netip.Addr][]use, n), backends: map[netip.Addr][]use{}, peers: map[netip.Addr]bool{}}
	if main.BGP != nil {
		for _, p := range main.BGP.Peers {
			if p.Address.IsValid() {
				x.peers[p.Address.WithZone("")] = true
			}
		}
	}
	for i, u := range units {
		x.add(unitKey(units, i), u)
	}
	return x
}

// update brings the index to units (whose main file is the one indexed),
// checking only the files that changed. It reports false, leaving the
// index in an undefined state (the caller drops it), when a changed file
// holds a name, VIP or backend that another file holds too, or when the
// limits need counting over all files.
func (x *crossIndex) update(main *Config, units []*unit) bool {
	keys := make(map[string]bool, len(units))
	var added []int
	for i, u := range units {
		k := unitKey(units, i)
		keys[k] = true
		if old, ok := x.units[k]; ok && (old == u || i == 0) {
			continue
		}
		added = append(added, i)
	}
	for k, u := range x.units {
		if !keys[k] {
			x.remove(k, u)
		}
	}
	replaced := make(map[int]*unit, len(added))
	for _, i := range added {
		k := unitKey(units, i)
		if old, ok := x.units[k]; ok {
			replaced[i] = old
			x.removeServices(k, old)
		}
	}
	for _, i := range added {
		k, u := unitKey(units, i), units[i]
		if x.conflicts(k, u) {
			return false
		}
		if old := replaced[i]; old != nil {
			x.units[k] = u
			x.addServices(k, u)
			x.swapBackends(k, old.backends, u.backends)
		} else {
			x.add(k, u) // a key the index no longer holds: no uses of it left
		}
	}
	x.units[mainKey] = units[0]
	total, allow := 0, 0
	for _, u := range units {
		total += len(u.services)
		allow += u.allow
	}
	return total <= main.LB.MaxVIPs && allow <= MaxAllowEntries && len(x.backends) <= main.LB.MaxBackends
}

// conflicts reports whether u (file key k) holds a name, VIP, protocol and
// port, or VIP-wide service another indexed file conflicts with, a VIP
// that is another file's backend, a backend that is another file's VIP, or
// a VIP that is a BGP peer's address. It reports more than crossCheck
// would refuse (crossCheck then decides).
func (x *crossIndex) conflicts(k string, u *unit) bool {
	for i := range u.services {
		s := &u.services[i]
		if _, dup := x.names[s.Name]; dup {
			return true
		}
		if !s.VIP.IsValid() {
			continue
		}
		if _, dup := x.exact[vipKey{s.VIP, s.Protocol, s.Port}]; dup {
			return true
		}
		for _, pu := range x.vipProto[vipKey{s.VIP, s.Protocol, -1}] {
			if pu.file != k && (s.Port == 0 || pu.wide > 0) {
				return true
			}
		}
		if others(x.backends[s.VIP], k) || x.peers[s.VIP] {
			return true
		}
	}
	for _, a := range u.backends {
		if others(x.vips[a], k) {
			return true
		}
	}
	return false
}

// others reports whether uses name a file other than k.
func others(uses []use, k string) bool {
	for _, u := range uses {
		if u.file != k {
			return true
		}
	}
	return false
}

// add indexes u's services and backends under file key k, which is new
// to the index: each backend gets a use of k without looking for one (a
// file's backends are distinct), so that indexing many files that share
// backends costs in proportion to their backends, not to their square.
func (x *crossIndex) add(k string, u *unit) {
	x.units[k] = u
	x.addServices(k, u)
	for _, a := range u.backends {
		x.backends[a] = append(x.backends[a], use{k, 1})
	}
}

func (x *crossIndex) addServices(k string, u *unit) {
	for i := range u.services {
		s := &u.services[i]
		x.names[s.Name] = k
		if !s.VIP.IsValid() {
			continue
		}
		x.exact[vipKey{s.VIP, s.Protocol, s.Port}] = k
		vp := vipKey{s.VIP, s.Protocol, -1}
		x.vipProto[vp] = addPortUse(x.vipProto[vp], k, s.Port == 0)
		x.vips[s.VIP] = addUse(x.vips[s.VIP], k, 1)
	}
}

func (x *crossIndex) addBackends(k string, as []netip.Addr) {
	for _, a := range as {
		x.backends[a] = addUse(x.backends[a], k, 1)
	}
}

// remove drops what add indexed of u under k.
func (x *crossIndex) remove(k string, u *unit) {
	delete(x.units, k)
	x.removeServices(k, u)
	x.removeBackends(k, u.backends)
}

func (x *crossIndex) removeServices(k string, u *unit) {
	for i := range u.services {
		s := &u.services[i]
		if x.names[s.Name] == k {
			delete(x.names, s.Name)
		}
		if !s.VIP.IsValid() {
			continue
		}
		if ek := (vipKey{s.VIP, s.Protocol, s.Port}); x.exact[ek] == k {
			delete(x.exact, ek)
		}
		vp := vipKey{s.VIP, s.Protocol, -1}
		if pus := removePortUse(x.vipProto[vp], k, s.Port == 0); len(pus) == 0 {
			delete(x.vipProto, vp)
		} else {
			x.vipProto[vp] = pus
		}
		if us := addUse(x.vips[s.VIP], k, -1); len(us) == 0 {
			delete(x.vips, s.VIP)
		} else {
			x.vips[s.VIP] = us
		}
	}
}

func (x *crossIndex) removeBackends(k string, as []netip.Addr) {
	for _, a := range as {
		if us := addUse(x.backends[a], k, -1); len(us) == 0 {
			delete(x.backends, a)
		} else {
			x.backends[a] = us
		}
	}
}

// swapBackends moves file k's distinct backends from old to next, touching
// only the addresses in one of them: a file that changed one service
// keeps almost all of its backends.
func (x *crossIndex) swapBackends(k string, old, next []netip.Addr) {
	had := make(map[netip.Addr]bool, len(old))
	for _, a := range old {
		had[a] = true
	}
	var gained []netip.Addr
	for _, a := range next {
		if had[a] {
			delete(had, a)
		} else {
			gained = append(gained, a)
		}
	}
	for _, a := range old {
		if had[a] {
			x.removeBackends(k, []netip.Addr{a})
		}
	}
	x.addBackends(k, gained)
}

// addUse adds d to k's count in uses, dropping k at 0 (in place: the
// order of uses means nothing, and a backend of every file has a use per
// file, so a copy per change would cost in proportion to the files).
func addUse(uses []use, k string, d int) []use {
	for i := range uses {
		if uses[i].file == k {
			if uses[i].n += d; uses[i].n <= 0 {
				last := len(uses) - 1
				uses[i] = uses[last]
				return uses[:last]
			}
			return uses
		}
	}
	if d > 0 {
		return append(uses, use{k, d})
	}
	return uses
}

func addPortUse(pus []portUse, k string, wide bool) []portUse {
	w := 0
	if wide {
		w = 1
	}
	for i := range pus {
		if pus[i].file == k {
			pus[i].n++
			pus[i].wide += w
			return pus
		}
	}
	return append(pus, portUse{use{k, 1}, w})
}

func removePortUse(pus []portUse, k string, wide bool) []portUse {
	for i := range pus {
		if pus[i].file != k {
			continue
		}
		pus[i].n--
		if wide {
			pus[i].wide--
		}
		if pus[i].n <= 0 {
			last := len(pus) - 1
			pus[i] = pus[last]
			return pus[:last]
		}
		return pus
	}
	return pus
}
