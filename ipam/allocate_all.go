package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// AllocateAll is Allocate for several requests (one owner's families, say)
// in one synced transaction: all of them are allocated, or none. A request
// whose owner already holds an address of its family gets that address,
// as with Allocate. With optional set, a request that no pool can serve
// (ErrNoPool) is left out instead of failing the call.
func (a *Allocator) AllocateAll(reqs []Request, optional bool) ([]Allocation, error) {
	for _, r := range reqs {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("ipam allocate: %w", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return nil, fmt.Errorf("ipam allocate: %w", ErrClosed)
	}
	var node map[netip.Addr]bool
	var out, fresh []Allocation
	picked := map[netip.Addr]bool{}
	cursors := map[string]netip.Addr{}
	for _, req := range reqs {
		if cur := a.byKey[string(allocKey(req.Owner, req.Family))]; cur != nil {
			if (req.Pool != "" && a.poolName(cur) != req.Pool) || (req.Kind != "" && cur.Kind != req.Kind) {
				return nil, fmt.Errorf("ipam allocate: %s already holds %s from pool %q (kind %s): %w",
					req.Owner, cur.Addr, a.poolName(cur), cur.Kind, ErrConflict)
			}
			out = append(out, a.view(cur))
			continue
		}
		pools, err := a.candidates(req)
		if optional && errors.Is(err, ErrNoPool) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ipam allocate: %w", err)
		}
		if len(a.byKey)+len(fresh) >= a.opts.MaxAllocations {
			return nil, fmt.Errorf("ipam allocate: %d allocations: %w", len(a.byKey), ErrLimit)
		}
		if node == nil {
			if node, err = a.nodeAddrs(); err != nil {
				return nil, fmt.Errorf("ipam allocate: node addresses: %w", err)
			}
			if node == nil {
				node = map[netip.Addr]bool{}
			}
		}
		al, ck, err := a.plan(req, pools, func(x netip.Addr) bool { return a.byAddr[x] != nil || node[x] || picked[x] })
		if err != nil {
			return nil, err
		}
		picked[al.Addr], cursors[ck] = true, al.Addr
		fresh = append(fresh, al)
		out = append(out, al)
	}
	if len(fresh) == 0 {
		return out, nil
	}
	if err := a.st.commit(fresh, nil, cursors); err != nil {
		return nil, fmt.Errorf("ipam allocate: %w", err)
	}
	for k, c := range cursors {
		a.cursors[k] = c
	}
	for i := range fresh {
		al := fresh[i]
		a.index(&al)
		a.log.Debug("allocated", "owner", al.Owner, "address", al.Addr, "pool", al.Pool)
	}
	return out, nil
}

// plan picks the address Allocate would give req from pools, without
// recording it; it returns the allocation and its pool's cursor key.
func (a *Allocator) plan(req Request, pools []Pool, busy func(netip.Addr) bool) (Allocation, string, error) {
	var tried []string
	for _, p := range pools {
		addr, ok := a.pick(p, req.Family, busy)
		if !ok {
			tried = append(tried, p.Name)
			continue
		}
		return Allocation{Owner: req.Owner, Family: req.Family, Addr: addr, Pool: p.Name, Kind: p.Kind, Created: time.Now().UTC()},
			cursorKey(p.Name, req.Family), nil
	}
	return Allocation{}, "", fmt.Errorf("ipam allocate %s for %s: no free address in pool(s) %q: %w", req.Family, req.Owner, tried, ErrExhausted)
}
