package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
)

// planeRoutes adds the endpoints of the network planes the backend runs.
func planeRoutes(mux *http.ServeMux, b Backend) {
	bb, _ := b.(BGPBackend)
	lbb, _ := b.(LBBackend)
	mux.HandleFunc("GET /v1/bgp/neighbors", func(w http.ResponseWriter, r *http.Request) {
		if bb == nil {
			writeError(w, http.StatusNotFound, fmt.Errorf("bgp: %w", ErrNotConfigured))
			return
		}
		ns, err := bb.BGPNeighbors()
		answer(w, ns, err)
	})
	mux.HandleFunc("GET /v1/bgp/routes", func(w http.ResponseWriter, r *http.Request) {
		if bb == nil {
			writeError(w, http.StatusNotFound, fmt.Errorf("bgp: %w", ErrNotConfigured))
			return
		}
		q, err := routeQuery(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		rs, err := bb.BGPRoutes(q)
		answer(w, rs, err)
	})
	for _, drain := range []bool{true, false} {
		path := "POST /v1/bgp/drain"
		if !drain {
			path = "POST /v1/bgp/undrain"
		}
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if bb == nil {
				writeError(w, http.StatusNotFound, fmt.Errorf("bgp: %w", ErrNotConfigured))
				return
			}
			res, err := bb.BGPDrain(drain)
			answer(w, res, err)
		})
	}
	mux.HandleFunc("GET /v1/lb/services", func(w http.ResponseWriter, r *http.Request) {
		if lbb == nil {
			writeError(w, http.StatusNotFound, fmt.Errorf("lb: %w", ErrNotConfigured))
			return
		}
		q, err := parseLBServiceQuery(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		ss, err := lbb.LBServices(q)
		answer(w, ss, err)
	})
	mux.HandleFunc("GET /v1/lb/stats", func(w http.ResponseWriter, r *http.Request) {
		if lbb == nil {
			writeError(w, http.StatusNotFound, fmt.Errorf("lb: %w", ErrNotConfigured))
			return
		}
		st, err := lbStats(r, lbb)
		answer(w, st, err)
	})
	mux.HandleFunc("POST /v1/lb/drain", func(w http.ResponseWriter, r *http.Request) {
		if lbb == nil {
			writeError(w, http.StatusNotFound, fmt.Errorf("lb: %w", ErrNotConfigured))
			return
		}
		var req LBDrain
		if err := decodeBody(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if req.Service == "" || !req.Backend.IsValid() {
			writeError(w, http.StatusBadRequest, errors.New("lb drain: service and backend are required"))
			return
		}
		answer(w, req, lbb.LBDrain(req))
	})
}

func routeQuery(r *http.Request) (BGPRouteQuery, error) {
	v := r.URL.Query()
	q := BGPRouteQuery{Neighbor: v.Get("neighbor"), Family: v.Get("family")}
	switch v.Get("kind") {
	case "advertised":
		q.Advertised = true
	case "received", "":
	default:
		return q, fmt.Errorf("bad kind %q: use advertised or received", v.Get("kind"))
	}
	switch q.Family {
	case "", "ipv6", "ipv4":
	default:
		return q, fmt.Errorf("bad family %q: use ipv6 or ipv4", q.Family)
	}
	if p := v.Get("prefix"); p != "" {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return q, fmt.Errorf("bad prefix %q", p)
		}
		q.Prefix = pfx
	}
	return q, nil
}

// answer writes v, or err: 404 for a plane that is not configured, 400 for
// anything else the daemon refused.
func answer(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrNotConfigured):
		writeError(w, http.StatusNotFound, err)
	default:
		writeError(w, http.StatusBadRequest, err)
	}
}
