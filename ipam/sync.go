package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Want is one address an owner should hold after Sync.
type Want struct {
	Owner string
	// Addr alone (no Pool, no Kind) is an explicit address, recorded as
	// with Reserve. With Pool or Kind it is only a preference: taken when
	// the owner holds nothing that fits and Addr is free.
	Addr   netip.Addr
	Family Family // for Pool/Kind wants
	Pool   string
	Kind   Kind
}

func (w Want) explicit() bool { return w.Pool == "" && w.Kind == "" }

func (w Want) family() Family {
	if w.explicit() {
		return FamilyOf(w.Addr)
	}
	return w.Family
}

// Sync makes the owners whose key starts with prefix hold exactly wants: it
// releases what no want asks for, keeps what still fits, records explicit
// addresses and allocates the rest, all in one transaction: on error
// nothing changes. It returns the resulting allocation of every want, in
// order. The daemon syncs "service/" with the [[services]] VIPs on every
// start and reload.
func (a *Allocator) Sync(prefix string, wants []Want) ([]Allocation, error) {
	return a.sync(prefix, nil, wants)
}

// SyncOwners is Sync for the named owners alone (each under prefix):
// what they hold and no want asks for is released, the others' addresses
// stay as they are. Every want's owner must be named. Its work is in
// proportion to the owners, not to the allocations: a reload that changes
// one service syncs that one.
func (a *Allocator) SyncOwners(prefix string, owners []string, wants []Want) ([]Allocation, error) {
	named := make(map[string]bool, len(owners))
	uniq := make([]string, 0, len(owners))
	for _, o := range owners {
		if err := validOwner(o); err != nil {
			return nil, fmt.Errorf("ipam sync: %w", err)
		}
		if !strings.HasPrefix(o, prefix) {
			return nil, fmt.Errorf("ipam sync: owner %q is outside %q", o, prefix)
		}
		if !named[o] {
			named[o] = true
			uniq = append(uniq, o)
		}
	}
	for _, w := range wants {
		if !named[w.Owner] {
			return nil, fmt.Errorf("ipam sync: %s wants an address but is not among the owners synced", w.Owner)
		}
	}
	return a.sync(prefix, uniq, wants)
}

// sync is Sync over owners (nil: every owner under prefix).
func (a *Allocator) sync(prefix string, owners []string, wants []Want) ([]Allocation, error) {
	byKey := make(map[string]int, len(wants)) // want index by owner and family
	for i, w := range wants {
		if err := w.validate(prefix); err != nil {
			return nil, fmt.Errorf("ipam sync: %w", err)
		}
		k := string(allocKey(w.Owner, w.family()))
		if _, dup := byKey[k]; dup {
			return nil, fmt.Errorf("ipam sync: %s wants two %s addresses", w.Owner, w.family())
		}
		byKey[k] = i
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return nil, fmt.Errorf("ipam sync: %w", ErrClosed)
	}
	node, err := a.nodeAddrs()
	if err != nil {
		return nil, fmt.Errorf("ipam sync: node addresses: %w", err)
	}
	p := syncPlan{a: a, taken: map[netip.Addr]bool{}, cursors: map[string]netip.Addr{}, node: node}
	p.releases(prefix, owners, wants, byKey)
	out := make([]Allocation, len(wants))
	// Explicit addresses first: they are fixed, pool wants can move.
	for _, pass := range []bool{true, false} {
		for i, w := range wants {
			if w.explicit() != pass {
				continue
			}
			if out[i], err = p.take(w); err != nil {
				return nil, fmt.Errorf("ipam sync: %w", err)
			}
		}
	}
	if n := len(a.byKey) - len(p.dels) + len(p.puts); n > a.opts.MaxAllocations {
		return nil, fmt.Errorf("ipam sync: %d allocations: %w", n, ErrLimit)
	}
	if len(p.puts)+len(p.dels) == 0 {
		return out, nil
	}
	if err := a.st.commit(p.puts, p.dels, p.cursors); err != nil {
		return nil, fmt.Errorf("ipam sync: %w", err)
	}
	for i := range p.dels {
		a.unindex(a.byKey[string(allocKey(p.dels[i].Owner, p.dels[i].Family))])
	}
	for i := range p.puts {
		al := p.puts[i]
		a.index(&al)
	}
	for k, c := range p.cursors {
		a.cursors[k] = c
	}
	for i := range out {
		out[i] = a.view(a.byKey[string(allocKey(out[i].Owner, out[i].Family))])
	}
	return out, nil
}

func (w Want) validate(prefix string) error {
	if err := validOwner(w.Owner); err != nil {
		return err
	}
	if !strings.HasPrefix(w.Owner, prefix) {
		return fmt.Errorf("owner %q is outside %q", w.Owner, prefix)
	}
	if w.explicit() {
		if !w.Addr.IsValid() || w.Addr.Zone() != "" || w.Addr.Is4In6() {
			return fmt.Errorf("%s: bad address %s", w.Owner, w.Addr)
		}
		return nil
	}
	if !w.Family.valid() {
		return fmt.Errorf("%s: bad family %q", w.Owner, w.Family)
	}
	if w.Addr.IsValid() && FamilyOf(w.Addr) != w.Family {
		return fmt.Errorf("%s: preferred address %s is not %s", w.Owner, w.Addr, w.Family)
	}
	return nil
}

// syncPlan is Sync's work in memory before the commit.
type syncPlan struct {
	a          *Allocator
	dels, puts []Allocation
	released   map[netip.Addr]bool
	taken      map[netip.Addr]bool // by puts
	cursors    map[string]netip.Addr
	node       map[netip.Addr]bool
}

// releases plans the release of every allocation of owners (nil: every
// owner under prefix) that no want keeps; byKey indexes wants by allocKey.
func (p *syncPlan) releases(prefix string, owners []string, wants []Want, byKey map[string]int) {
	p.released = map[netip.Addr]bool{}
	check := func(k string, al *Allocation) {
		i, ok := byKey[k]
		if !ok || !p.fits(al, wants[i]) {
			p.dels = append(p.dels, *al)
			p.released[al.Addr] = true
		}
	}
	if owners != nil {
		for _, o := range owners {
			for _, f := range []Family{IPv6, IPv4} {
				k := string(allocKey(o, f))
				if al := p.a.byKey[k]; al != nil {
					check(k, al)
				}
			}
		}
		return
	}
	for k, al := range p.a.byKey {
		if strings.HasPrefix(al.Owner, prefix) {
			check(k, al)
		}
	}
}

// fits reports whether a held allocation satisfies w.
func (p *syncPlan) fits(al *Allocation, w Want) bool {
	if w.explicit() {
		return al.Addr == w.Addr
	}
	pool := p.a.poolOf(al.Addr)
	return pool != nil && (w.Pool == "" || pool.Name == w.Pool) && (w.Kind == "" || pool.Kind == w.Kind)
}

func (p *syncPlan) busy(x netip.Addr) bool {
	return p.taken[x] || (p.a.byAddr[x] != nil && !p.released[x])
}

// take plans w's allocation: the one it holds, or a new one.
func (p *syncPlan) take(w Want) (Allocation, error) {
	f := w.family()
	if cur := p.a.byKey[string(allocKey(w.Owner, f))]; cur != nil && !p.released[cur.Addr] {
		return *cur, nil
	}
	now := time.Now().UTC()
	if w.explicit() {
		pool := p.a.poolOf(w.Addr)
		switch {
		case pool == nil:
			return Allocation{}, fmt.Errorf("%s: %s is in no pool: %w", w.Owner, w.Addr, ErrNoPool)
		case p.busy(w.Addr):
			return Allocation{}, fmt.Errorf("%s: %s is held by %s: %w", w.Owner, w.Addr, p.holder(w.Addr), ErrConflict)
		}
		return p.put(Allocation{Owner: w.Owner, Family: f, Addr: w.Addr, Pool: pool.Name, Kind: pool.Kind, Created: now, Reserved: true}), nil
	}
	pools, err := p.a.candidates(Request{Owner: w.Owner, Family: f, Pool: w.Pool, Kind: w.Kind})
	if err != nil {
		return Allocation{}, fmt.Errorf("%s: %w", w.Owner, err)
	}
	if w.Addr.IsValid() && !p.busy(w.Addr) {
		for _, pool := range pools {
			if slices.ContainsFunc(pool.Prefixes, func(q netip.Prefix) bool { return q.Contains(w.Addr) && !excluded(q, w.Addr) }) {
				return p.put(Allocation{Owner: w.Owner, Family: f, Addr: w.Addr, Pool: pool.Name, Kind: pool.Kind, Created: now}), nil
			}
		}
	}
	for _, pool := range pools {
		addr, ok := p.a.pick(pool, f, func(x netip.Addr) bool { return p.busy(x) || p.node[x] })
		if ok {
			ck := cursorKey(pool.Name, f)
			p.cursors[ck] = addr
			p.a.cursors[ck] = addr // the next pick in this plan starts after it (a hint: harmless if the commit fails)
			return p.put(Allocation{Owner: w.Owner, Family: f, Addr: addr, Pool: pool.Name, Kind: pool.Kind, Created: now}), nil
		}
	}
	return Allocation{}, fmt.Errorf("%s: no free %s address: %w", w.Owner, f, ErrExhausted)
}

func (p *syncPlan) put(al Allocation) Allocation {
	p.puts = append(p.puts, al)
	p.taken[al.Addr] = true
	return al
}

func (p *syncPlan) holder(x netip.Addr) string {
	for _, al := range p.puts {
		if al.Addr == x {
			return al.Owner
		}
	}
	return p.a.byAddr[x].Owner
}
