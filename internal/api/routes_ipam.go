package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aird-net/aird/ipam"
)

// ipamRoutes adds the address management endpoints.
func ipamRoutes(mux *http.ServeMux, b Backend) {
	ib, _ := b.(IPAMBackend)
	handle := func(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if ib == nil {
				writeError(w, http.StatusNotFound, fmt.Errorf("ipam: %w", ErrNotConfigured))
				return
			}
			h(w, r)
		})
	}
	handle("GET /v1/ipam/pools", func(w http.ResponseWriter, r *http.Request) {
		ps, err := ib.IPAMPools()
		ipamAnswer(w, ps, err)
	})
	handle("GET /v1/ipam/allocations", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		as, err := ib.IPAMAllocations(q.Get("pool"), q.Get("owner"))
		ipamAnswer(w, as, err)
	})
	handle("POST /v1/ipam/allocate", func(w http.ResponseWriter, r *http.Request) {
		var req IPAMAllocate
		if !decodeOwned(w, r, &req, func() string { return req.Owner }) {
			return
		}
		al, err := ib.IPAMAllocate(req)
		ipamAnswer(w, al, err)
	})
	handle("POST /v1/ipam/reserve", func(w http.ResponseWriter, r *http.Request) {
		var req IPAMReserve
		if !decodeOwned(w, r, &req, func() string { return req.Owner }) {
			return
		}
		al, err := ib.IPAMReserve(req)
		ipamAnswer(w, al, err)
	})
	handle("POST /v1/ipam/release", func(w http.ResponseWriter, r *http.Request) {
		var req IPAMRelease
		if !decodeOwned(w, r, &req, func() string { return req.Owner }) {
			return
		}
		as, err := ib.IPAMRelease(req)
		if as == nil {
			as = []ipam.Allocation{}
		}
		ipamAnswer(w, as, err)
	})
}

// decodeOwned decodes a mutating request and refuses owners aird manages
// itself.
func decodeOwned(w http.ResponseWriter, r *http.Request, v any, owner func() string) bool {
	if err := decodeBody(r, v); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return false
	}
	if daemonOwned(owner()) {
		writeError(w, http.StatusForbidden, fmt.Errorf("owner %q is managed by aird itself (prefixes %q); use another owner name", owner(), DaemonOwnerPrefixes))
		return false
	}
	return true
}

// ipamAnswer maps the allocator's errors to HTTP codes: no pool 404, a
// conflict, an exhausted pool or the allocation limit 409, anything else
// (a bad request) 400.
func ipamAnswer(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrNotConfigured), errors.Is(err, ipam.ErrNoPool):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ipam.ErrConflict), errors.Is(err, ipam.ErrExhausted), errors.Is(err, ipam.ErrLimit):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, ipam.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, err)
	default:
		writeError(w, http.StatusBadRequest, err)
	}
}
