package ipam

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Allocator hands out addresses from pools and remembers them in its store.
// It is safe for concurrent use; changes are serialized and each is on disk
// before the call returns.
type Allocator struct {
	log  *slog.Logger
	opts Options

	mu      sync.Mutex
	st      *store // nil once closed
	pools   []Pool
	byKey   map[string]*Allocation // owner NUL family
	byAddr  map[netip.Addr]*Allocation
	cursors map[string]netip.Addr // pool NUL family -> last address handed out
}

// Open opens (or creates) the store at o.Path and loads its allocations.
// Allocations whose address is in no pool of o.Pools are kept (Orphan).
func Open(o Options) (*Allocator, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	st, err := openStore(o.Path, o.LockTimeout)
	if err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	as, cursors, err := st.load()
	if err != nil {
		st.close()
		return nil, fmt.Errorf("ipam: %w", err)
	}
	a := &Allocator{log: o.Logger, opts: o, st: st, pools: slices.Clone(o.Pools), cursors: cursors,
		byKey: make(map[string]*Allocation, len(as)), byAddr: make(map[netip.Addr]*Allocation, len(as))}
	for i := range as {
		al := &as[i]
		if other := a.byAddr[al.Addr]; other != nil {
			st.close()
			return nil, fmt.Errorf("ipam: %s: corrupt store: %s held by both %s and %s", o.Path, al.Addr, other.Owner, al.Owner)
		}
		a.index(al)
	}
	a.log.Info("ipam store opened", "path", o.Path, "allocations", len(as), "pools", len(o.Pools))
	return a, nil
}

func (a *Allocator) index(al *Allocation) {
	a.byKey[string(allocKey(al.Owner, al.Family))] = al
	a.byAddr[al.Addr] = al
}

func (a *Allocator) unindex(al *Allocation) {
	delete(a.byKey, string(allocKey(al.Owner, al.Family)))
	delete(a.byAddr, al.Addr)
}

// Close closes the store. Later calls fail with ErrClosed.
func (a *Allocator) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return nil
	}
	err := a.st.close()
	a.st = nil
	return err
}

// SetPools replaces the pools (a configuration reload). Allocations are
// kept; those no pool holds any more are reported as Orphan.
func (a *Allocator) SetPools(pools []Pool) error {
	if err := validatePools(pools); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pools = slices.Clone(pools)
	return nil
}

// Allocate returns the owner's address of the family, allocating one when
// the owner has none. It is idempotent: the same owner gets the same address
// back until it is released. The address is on disk when Allocate returns.
func (a *Allocator) Allocate(req Request) (Allocation, error) {
	if err := req.validate(); err != nil {
		return Allocation{}, fmt.Errorf("ipam allocate: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return Allocation{}, fmt.Errorf("ipam allocate: %w", ErrClosed)
	}
	if cur := a.byKey[string(allocKey(req.Owner, req.Family))]; cur != nil {
		if (req.Pool != "" && a.poolName(cur) != req.Pool) || (req.Kind != "" && cur.Kind != req.Kind) {
			return Allocation{}, fmt.Errorf("ipam allocate: %s already holds %s from pool %q (kind %s): %w",
				req.Owner, cur.Addr, a.poolName(cur), cur.Kind, ErrConflict)
		}
		return a.view(cur), nil
	}
	pools, err := a.candidates(req)
	if err != nil {
		return Allocation{}, fmt.Errorf("ipam allocate: %w", err)
	}
	if len(a.byKey) >= a.opts.MaxAllocations {
		return Allocation{}, fmt.Errorf("ipam allocate: %d allocations: %w", len(a.byKey), ErrLimit)
	}
	node, err := a.nodeAddrs()
	if err != nil {
		return Allocation{}, fmt.Errorf("ipam allocate: node addresses: %w", err)
	}
	var tried []string
	for _, p := range pools {
		addr, ok := a.pick(p, req.Family, func(x netip.Addr) bool { return a.byAddr[x] != nil || node[x] })
		if !ok {
			tried = append(tried, p.Name)
			continue
		}
		al := &Allocation{Owner: req.Owner, Family: req.Family, Addr: addr, Pool: p.Name, Kind: p.Kind, Created: time.Now().UTC()}
		ck := cursorKey(p.Name, req.Family)
		if err := a.st.commit([]Allocation{*al}, nil, map[string]netip.Addr{ck: addr}); err != nil {
			return Allocation{}, fmt.Errorf("ipam allocate: %w", err)
		}
		a.cursors[ck] = addr
		a.index(al)
		a.log.Debug("allocated", "owner", al.Owner, "address", al.Addr, "pool", p.Name)
		return a.view(al), nil
	}
	return Allocation{}, fmt.Errorf("ipam allocate %s for %s: no free address in pool(s) %q: %w", req.Family, req.Owner, tried, ErrExhausted)
}

// candidates returns the pools a request may take from, in order, each with
// at least one prefix of the family.
func (a *Allocator) candidates(req Request) ([]Pool, error) {
	var out []Pool
	for _, p := range a.pools {
		if (req.Pool != "" && p.Name != req.Pool) || (req.Kind != "" && p.Kind != req.Kind) {
			continue
		}
		if req.Pool != "" || slices.ContainsFunc(p.Prefixes, func(q netip.Prefix) bool { return FamilyOf(q.Addr()) == req.Family }) {
			out = append(out, p)
		}
	}
	switch {
	case len(out) == 1 && req.Pool != "" && !slices.ContainsFunc(out[0].Prefixes, func(q netip.Prefix) bool { return FamilyOf(q.Addr()) == req.Family }):
		return nil, fmt.Errorf("pool %q has no %s prefix (on this node): %w", req.Pool, req.Family, ErrExhausted)
	case len(out) > 0:
		return out, nil
	case req.Pool != "" && slices.ContainsFunc(a.pools, func(p Pool) bool { return p.Name == req.Pool }):
		return nil, fmt.Errorf("pool %q is not of kind %s: %w", req.Pool, req.Kind, ErrNoPool)
	case req.Pool != "":
		return nil, fmt.Errorf("pool %q: %w", req.Pool, ErrNoPool)
	default:
		return nil, fmt.Errorf("no pool of kind %s with an %s prefix (on this node): %w", req.Kind, req.Family, ErrNoPool)
	}
}

func (a *Allocator) nodeAddrs() (map[netip.Addr]bool, error) {
	if a.opts.NodeAddrs == nil {
		return nil, nil
	}
	as, err := a.opts.NodeAddrs()
	if err != nil {
		return nil, err
	}
	m := make(map[netip.Addr]bool, len(as))
	for _, x := range as {
		m[x.WithZone("").Unmap()] = true
	}
	return m, nil
}

// pick finds a free address of the family in p, starting after the last one
// handed out. Steps are bounded by the addresses in use (and skipped
// reserved ones) until the first free address; a full pass means the pool
// is exhausted.
func (a *Allocator) pick(p Pool, f Family, busy func(netip.Addr) bool) (netip.Addr, bool) {
	var pfx []netip.Prefix
	for _, q := range p.Prefixes {
		if FamilyOf(q.Addr()) == f {
			pfx = append(pfx, q)
		}
	}
	if len(pfx) == 0 {
		return netip.Addr{}, false
	}
	idx, start := 0, pfx[0].Addr()
	if c, ok := a.cursors[cursorKey(p.Name, f)]; ok {
		// Start after the last address handed out, so a released one
		// is reused only after a full pass.
		for i, q := range pfx {
			if q.Contains(c) {
				n, ok := next(q, c)
				if !ok {
					i = (i + 1) % len(pfx)
					n = pfx[i].Addr()
				}
				idx, start = i, n
				break
			}
		}
	}
	i, c, wrapped := idx, start, false
	for {
		if !excluded(pfx[i], c) && !busy(c) {
			return c, true
		}
		n, ok := next(pfx[i], c)
		if !ok {
			if i++; i == len(pfx) {
				i, wrapped = 0, true
			}
			n = pfx[i].Addr()
		}
		c = n
		if wrapped && i == idx && c.Compare(start) >= 0 {
			return netip.Addr{}, false
		}
	}
}

// Reserve records addr, chosen by the caller, as held by owner: an explicit
// service VIP, a gateway. The address must lie in a pool; unlike Allocate,
// Reserve accepts the addresses Allocate skips (first, reserved anycast) and
// addresses configured on the node. It is idempotent; an owner that holds
// another address of the family must release it first.
func (a *Allocator) Reserve(owner string, addr netip.Addr) (Allocation, error) {
	if err := validOwner(owner); err != nil {
		return Allocation{}, fmt.Errorf("ipam reserve: %w", err)
	}
	if !addr.IsValid() || addr.Zone() != "" || addr.Is4In6() {
		return Allocation{}, fmt.Errorf("ipam reserve: bad address %s", addr)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return Allocation{}, fmt.Errorf("ipam reserve: %w", ErrClosed)
	}
	f := FamilyOf(addr)
	if cur := a.byKey[string(allocKey(owner, f))]; cur != nil {
		if cur.Addr == addr {
			return a.view(cur), nil
		}
		return Allocation{}, fmt.Errorf("ipam reserve %s for %s: it already holds %s: %w", addr, owner, cur.Addr, ErrConflict)
	}
	if holder := a.byAddr[addr]; holder != nil {
		return Allocation{}, fmt.Errorf("ipam reserve %s for %s: held by %s: %w", addr, owner, holder.Owner, ErrConflict)
	}
	p := a.poolOf(addr)
	if p == nil {
		return Allocation{}, fmt.Errorf("ipam reserve %s: address is in no pool: %w", addr, ErrNoPool)
	}
	if len(a.byKey) >= a.opts.MaxAllocations {
		return Allocation{}, fmt.Errorf("ipam reserve: %d allocations: %w", len(a.byKey), ErrLimit)
	}
	al := &Allocation{Owner: owner, Family: f, Addr: addr, Pool: p.Name, Kind: p.Kind, Created: time.Now().UTC(), Reserved: true}
	if err := a.st.commit([]Allocation{*al}, nil, nil); err != nil {
		return Allocation{}, fmt.Errorf("ipam reserve: %w", err)
	}
	a.index(al)
	a.log.Debug("reserved", "owner", owner, "address", addr, "pool", p.Name)
	return a.view(al), nil
}

// Release frees every address the owner holds and returns them. Releasing
// an owner with nothing allocated is not an error (a retried delete).
func (a *Allocator) Release(owner string) ([]Allocation, error) {
	if err := validOwner(owner); err != nil {
		return nil, fmt.Errorf("ipam release: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return nil, fmt.Errorf("ipam release: %w", ErrClosed)
	}
	var out []Allocation
	for _, f := range []Family{IPv6, IPv4} {
		if cur := a.byKey[string(allocKey(owner, f))]; cur != nil {
			out = append(out, *cur)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := a.st.commit(nil, out, nil); err != nil {
		return nil, fmt.Errorf("ipam release: %w", err)
	}
	for i := range out {
		a.unindex(a.byKey[string(allocKey(owner, out[i].Family))])
		out[i] = a.view(&out[i])
	}
	a.log.Debug("released", "owner", owner, "count", len(out))
	return out, nil
}

// Lookup returns the owner's addresses, IPv6 first; none is not an error.
func (a *Allocator) Lookup(owner string) []Allocation {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Allocation
	for _, f := range []Family{IPv6, IPv4} {
		if cur := a.byKey[string(allocKey(owner, f))]; cur != nil {
			out = append(out, a.view(cur))
		}
	}
	return out
}

// Holder returns the allocation of addr, if any.
func (a *Allocator) Holder(addr netip.Addr) (Allocation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur := a.byAddr[addr]; cur != nil {
		return a.view(cur), true
	}
	return Allocation{}, false
}

// Allocations lists the allocations of one pool ("" for all), by pool then
// address. Orphans are listed under the pool they were taken from.
func (a *Allocator) Allocations(pool string) []Allocation {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Allocation, 0, len(a.byKey))
	for _, al := range a.byKey {
		v := a.view(al)
		if pool == "" || v.Pool == pool {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(x, y Allocation) int {
		return cmp.Or(cmp.Compare(x.Pool, y.Pool), x.Addr.Compare(y.Addr))
	})
	return out
}

// view returns a copy of al with its current pool (a renamed or removed
// pool changes what is reported, not what is stored).
func (a *Allocator) view(al *Allocation) Allocation {
	v := *al
	if p := a.poolOf(al.Addr); p != nil {
		v.Pool, v.Orphan = p.Name, false
	} else {
		v.Orphan = true
	}
	return v
}

func (a *Allocator) poolName(al *Allocation) string {
	if p := a.poolOf(al.Addr); p != nil {
		return p.Name
	}
	return al.Pool
}

func (a *Allocator) poolOf(addr netip.Addr) *Pool {
	for i := range a.pools {
		for _, q := range a.pools[i].Prefixes {
			if q.Contains(addr) {
				return &a.pools[i]
			}
		}
	}
	return nil
}
