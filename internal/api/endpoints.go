package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"
)

// EndpointRequest is the body of POST /v1/endpoints: a container (Netns)
// or a VM (Tap) endpoint. It is the API a CNI plugin calls.
type EndpointRequest struct {
	Name     string       `json:"name"`
	Netns    string       `json:"netns,omitempty"`
	Ifname   string       `json:"ifname,omitempty"`
	Tap      string       `json:"tap,omitempty"`
	MAC      string       `json:"mac,omitempty"`
	Families []string     `json:"families,omitempty"`
	VIPs     []netip.Addr `json:"vips,omitempty"`
}

// Endpoint is one endpoint as GET /v1/endpoints shows it.
type Endpoint struct {
	Name      string           `json:"name"`
	Kind      string           `json:"kind"` // container or vm
	State     string           `json:"state"`
	ID        uint32           `json:"id"`
	Interface string           `json:"interface"` // the host side of its link
	Netns     string           `json:"netns,omitempty"`
	Ifname    string           `json:"ifname,omitempty"`
	Tap       string           `json:"tap,omitempty"`
	MAC       string           `json:"mac,omitempty"`
	MTU       int              `json:"mtu"`
	Addresses []netip.Addr     `json:"addresses"`
	VIPs      []netip.Addr     `json:"vips,omitempty"`
	Created   time.Time        `json:"created"`
	Counters  EndpointCounters `json:"counters"`
}

// EndpointCounters are an endpoint's data-plane counters.
type EndpointCounters struct {
	RxPackets   uint64 `json:"rx_packets"`
	RxBytes     uint64 `json:"rx_bytes"`
	TxPackets   uint64 `json:"tx_packets"`
	TxBytes     uint64 `json:"tx_bytes"`
	DropSpoofed uint64 `json:"drop_spoofed"`
	DropDecap   uint64 `json:"drop_decap"`
}

// EndpointBackend is implemented by a daemon that manages endpoints.
// Errors wrap ErrBadRequest, ErrNotFound or ErrConflict to pick the HTTP
// status.
type EndpointBackend interface {
	EndpointAdd(EndpointRequest) (Endpoint, error)
	EndpointDelete(name string) error
	Endpoints() ([]Endpoint, error)
	Endpoint(name string) (Endpoint, error)
}

// Errors an EndpointBackend wraps to choose the HTTP status.
var (
	ErrBadRequest = errors.New("bad request") // 400
	ErrNotFound   = errors.New("not found")   // 404
	ErrConflict   = errors.New("conflict")    // 409
)

// endpointRoutes adds the endpoint API.
func endpointRoutes(mux *http.ServeMux, b Backend) {
	eb, _ := b.(EndpointBackend)
	handle := func(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if eb == nil {
				writeError(w, http.StatusNotFound, fmt.Errorf("endpoints: %w", ErrNotConfigured))
				return
			}
			h(w, r)
		})
	}
	handle("GET /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		eps, err := eb.Endpoints()
		endpointAnswer(w, eps, err)
	})
	handle("GET /v1/endpoints/{name}", func(w http.ResponseWriter, r *http.Request) {
		ep, err := eb.Endpoint(r.PathValue("name"))
		endpointAnswer(w, ep, err)
	})
	handle("POST /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		var req EndpointRequest
		if err := decodeBody(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		ep, err := eb.EndpointAdd(req)
		endpointAnswer(w, ep, err)
	})
	handle("DELETE /v1/endpoints/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		endpointAnswer(w, map[string]string{"deleted": name}, eb.EndpointDelete(name))
	})
}

func endpointAnswer(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrNotConfigured), errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}
