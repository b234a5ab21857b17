package bgp

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

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
	var withdraw []localRoute
	for p, lr := range s.advertised {
		if _, ok := want[p]; !ok {
			withdraw = append(withdraw, lr)
		}
	}
	var errs []error
	if n, err := deletePaths(s.run.srv, withdraw); err != nil {
		errs = append(errs, err)
		for _, lr := range withdraw[:n] {
			delete(s.advertised, lr.prefix)
		}
	} else {
		for _, lr := range withdraw {
			delete(s.advertised, lr.prefix)
		}
	}
	added, err := addPaths(s.run.srv, want, s.advertised)
	maps.Copy(s.advertised, added)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bgp: set advertised: %w", err)
	}
	return nil
}

// localRoutes validates and merges routes.
func localRoutes(routes []Route) (map[netip.Prefix]localRoute, error) {
	merged := map[netip.Prefix]Route{}
	var order []netip.Prefix
	for _, r := range routes {
		m, ok := merged[r.Prefix]
		if !ok {
			order = append(order, r.Prefix)
			m.Prefix = r.Prefix
		}
		m.Communities = append(slices.Clip(m.Communities), r.Communities...)
		m.LargeCommunities = append(slices.Clip(m.LargeCommunities), r.LargeCommunities...)
		merged[r.Prefix] = m
	}
	out := make(map[netip.Prefix]localRoute, len(merged))
	var errs []error
	for _, p := range order {
		lr, err := newLocalRoute(merged[p])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[lr.prefix] = lr
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// addPaths announces the routes of want that have holds not, or holds with
// other attributes, in batches. It returns those GoBGP took.
func addPaths(srv pathAPI, want, holds map[netip.Prefix]localRoute) (map[netip.Prefix]localRoute, error) {
	var todo []localRoute
	for p, lr := range want {
		if old, ok := holds[p]; !ok || !old.same(lr) {
			todo = append(todo, lr)
		}
	}
	slices.SortFunc(todo, func(a, b localRoute) int { return a.prefix.Addr().Compare(b.prefix.Addr()) })
	added := make(map[netip.Prefix]localRoute, len(todo))
	for chunk := range slices.Chunk(todo, batchSize) {
		req := apiutil.AddPathRequest{Paths: make([]*apiutil.Path, 0, len(chunk))}
		for _, lr := range chunk {
			p, err := lr.path(false)
			if err != nil {
				return added, err
			}
			req.Paths = append(req.Paths, p)
		}
		resps, err := srv.AddPath(req)
		if err != nil {
			return added, fmt.Errorf("add %d paths: %w", len(req.Paths), err)
		}
		for i, lr := range chunk {
			if i < len(resps) && resps[i].Error != nil {
				return added, fmt.Errorf("add path %s: %w", lr.prefix, resps[i].Error)
			}
			added[lr.prefix] = lr
		}
	}
	return added, nil
}

// deletePaths withdraws routes in batches; it returns how many were
// withdrawn.
func deletePaths(srv pathAPI, routes []localRoute) (int, error) {
	done := 0
	for chunk := range slices.Chunk(routes, batchSize) {
		req := apiutil.DeletePathRequest{Paths: make([]*apiutil.Path, 0, len(chunk))}
		for _, lr := range chunk {
			p, err := lr.path(true)
			if err != nil {
				return done, err
			}
			req.Paths = append(req.Paths, p)
		}
		if err := srv.DeletePath(req); err != nil {
			return done, fmt.Errorf("withdraw %d paths: %w", len(req.Paths), err)
		}
		done += len(chunk)
	}
	return done, nil
}
