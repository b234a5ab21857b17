package bgp

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
)

// batchSize is how many paths go to GoBGP in one AddPath or DeletePath
// call. GoBGP takes a whole batch in one management operation, so a batch
// is cheap but holds other management calls (ListPeer, ...) meanwhile.
const batchSize = 2048

// pathAPI is the part of GoBGP's server that takes our paths.
type pathAPI interface {
	AddPath(apiutil.AddPathRequest) ([]apiutil.AddPathResponse, error)
	DeletePath(apiutil.DeletePathRequest) error
}

// SetAdvertised makes the locally originated routes exactly routes: new
// prefixes are announced, prefixes no longer listed are withdrawn and
// prefixes whose communities changed are announced again, each in batches
// (many paths per GoBGP call). Routes listing the same prefix are merged
// (their communities are joined). Before Start it only records the set.
// Which routes to pass (pod prefixes, healthy VIPs, [bgp.advertise]) is the
// caller's business.
func (s *Speaker) SetAdvertised(routes []Route) error {
	want, err := localRoutes(routes)
	if err != nil {
		return fmt.Errorf("bgp: set advertised: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.desired = want
	if s.run == nil || s.drain == drainWithdrawn {
		return nil
	}
	// advertised is not want: changing it in place is safe.
	var withdraw []localRoute
	for p, a := range s.advertised.all() {
		if _, ok := want.get(p); !ok {
			withdraw = append(withdraw, localRoute{p, a})
		}
	}
	var errs []error
	n, err := deletePaths(s.run.srv, withdraw)
	for _, lr := range withdraw[:n] {
		s.advertised.delete(lr.prefix)
	}
	if err != nil {
		errs = append(errs, err)
	}
	added, err := addPaths(s.run.srv, want, s.advertised)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		s.advertised = want
	}
	s.run.trim.routes.Store(int64(s.advertised.len()))
	s.run.trim.bulk(n+added, time.Now())
	// One of ours may now hide, or no longer hide, a learned route of
	// the same prefix: GoBGP's best-path events tell the reconciler.
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bgp: set advertised: %w", err)
	}
	return nil
}

// ownAdvertised gives advertised a set of its own before it is changed in
// place: while GoBGP holds exactly what was asked for, advertised is the
// desired set itself (one set of 100,000 routes, not two).
func (s *Speaker) ownAdvertised() {
	if s.advertised == s.desired {
		s.advertised = s.advertised.clone()
	}
}

// localRoutes validates and merges routes. Routes with the same
// communities share one routeAttrs.
func localRoutes(routes []Route) (*routeSet, error) {
	cache := newAttrsCache()
	out := newRouteSet(len(routes))
	var errs []error
	for _, r := range routes {
		if err := checkPrefix(r.Prefix); err != nil {
			errs = append(errs, err)
			continue
		}
		a, err := cache.get(r.Communities, r.LargeCommunities)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Prefix, err))
			continue
		}
		if old, ok := out.get(r.Prefix); ok {
			a = cache.merge(old, a)
		}
		out.set(r.Prefix, a)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// addPaths announces the routes of want that holds lacks, or holds with
// other communities, in batches (in map order: sorting 100,000 prefixes
// cost a tenth of the load). It records in holds what GoBGP took and
// returns how many that was.
func addPaths(srv pathAPI, want, holds *routeSet) (int, error) {
	todo := make([]localRoute, 0, want.len()-min(holds.len(), want.len()))
	for p, a := range want.all() {
		if old, ok := holds.get(p); !ok || !old.same(a) {
			todo = append(todo, localRoute{p, a})
		}
	}
	done := 0
	b := newPathBatch(min(len(todo), batchSize))
	for chunk := range slices.Chunk(todo, batchSize) {
		req, err := b.request(chunk, false)
		if err != nil {
			return done, err
		}
		resps, err := srv.AddPath(apiutil.AddPathRequest{Paths: req})
		if err != nil {
			return done, fmt.Errorf("add %d paths: %w", len(req), err)
		}
		for i, lr := range chunk {
			if i < len(resps) && resps[i].Error != nil {
				return done, fmt.Errorf("add path %s: %w", lr.prefix, resps[i].Error)
			}
			holds.set(lr.prefix, lr.attrs)
			done++
		}
	}
	return done, nil
}

// deletePaths withdraws routes in batches; it returns how many were
// withdrawn.
func deletePaths(srv pathAPI, routes []localRoute) (int, error) {
	done := 0
	b := newPathBatch(min(len(routes), batchSize))
	for chunk := range slices.Chunk(routes, batchSize) {
		req, err := b.request(chunk, true)
		if err != nil {
			return done, err
		}
		if err := srv.DeletePath(apiutil.DeletePathRequest{Paths: req}); err != nil {
			return done, fmt.Errorf("withdraw %d paths: %w", len(req), err)
		}
		done += len(chunk)
	}
	return done, nil
}

// pathBatch renders one batch of paths at a time into the same memory:
// GoBGP's AddPath and DeletePath copy what they keep (the NLRI and the
// attribute objects) out of the request before they return.
type pathBatch struct {
	store []apiutil.Path
	paths []*apiutil.Path
}

func newPathBatch(n int) *pathBatch {
	b := &pathBatch{store: make([]apiutil.Path, n), paths: make([]*apiutil.Path, n)}
	for i := range b.store {
		b.paths[i] = &b.store[i]
	}
	return b
}

func (b *pathBatch) request(chunk []localRoute, withdraw bool) ([]*apiutil.Path, error) {
	age := time.Now().Unix()
	for i, lr := range chunk {
		if err := lr.fill(b.paths[i], withdraw, age); err != nil {
			return nil, err
		}
	}
	return b.paths[:len(chunk)], nil
}
