package api

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// LBService is one service in GET /v1/lb/services: its state, its traffic
// and, when asked for (?backends=1), every backend's state and traffic.
type LBService struct {
	Name     string     `json:"name"`
	VIP      netip.Addr `json:"vip"`
	Port     int        `json:"port"`
	Protocol string     `json:"protocol"`
	// Serving is true while the VIP has a backend that takes new flows:
	// the VIP is advertised.
	Serving bool `json:"serving"`
	// Usable counts the backends taking new flows (healthy, not drained,
	// weight above 0); Total all of them.
	Usable int `json:"usable"`
	Total  int `json:"total"`
	// Packets and Bytes are what the data plane load-balanced for the
	// service, summed over CPUs; absent without a data plane.
	Packets  *uint64          `json:"packets,omitempty"`
	Bytes    *uint64          `json:"bytes,omitempty"`
	Backends []LBBackendState `json:"backends,omitempty"`
}

// LBBackendState is one backend of a service.
type LBBackendState struct {
	Address netip.Addr `json:"address"`
	Weight  uint32     `json:"weight"`
	Drained bool       `json:"drained"`
	Health  LBHealth   `json:"health"`
	// Packets and Bytes were sent to the backend's address, by every
	// service it is in (one counter per address).
	Packets *uint64 `json:"packets,omitempty"`
	Bytes   *uint64 `json:"bytes,omitempty"`
}

// LBHealth is a backend's health check state.
type LBHealth struct {
	// Checked is false for a service without checks (healthy by
	// configuration).
	Checked bool `json:"checked"`
	Healthy bool `json:"healthy"`
	// Known is false after a restart until the first successful probe
	// or `fall` failed ones: the data plane keeps the earlier process's
	// view meanwhile.
	Known     bool      `json:"known"`
	Via       string    `json:"via,omitempty"`
	Fallback  string    `json:"fallback,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Checks    uint64    `json:"checks"`
	Failures  uint64    `json:"failures"`
}

// LBServiceList is the answer to GET /v1/lb/services: one page.
type LBServiceList struct {
	Services []LBService `json:"services"`
	// Next is the after= of the next page, absent on the last.
	Next string `json:"next,omitempty"`
}

// LBServiceQuery selects services: GET /v1/lb/services?name=&vip=&after=&limit=&backends=1
// (and name=, vip=, after=, limit= on GET /v1/lb/stats).
type LBServiceQuery struct {
	Name     string       // exactly this service
	VIP      *VIPSelector // services on this VIP (and port, protocol)
	After    string       // continue after the service of this name (configuration order)
	Limit    int          // at most this many services; 0: all
	Backends bool         // with their backends
}

// MaxLBPage is the largest limit= accepted.
const MaxLBPage = 100000

// Matches reports whether the query selects the service.
func (q LBServiceQuery) Matches(name string, vip netip.Addr, port int, protocol string) bool {
	return (q.Name == "" || q.Name == name) && (q.VIP == nil || q.VIP.Matches(vip, port, protocol))
}

// Values returns the query in URL form.
func (q LBServiceQuery) Values() url.Values {
	v := url.Values{}
	if q.Name != "" {
		v.Set("name", q.Name)
	}
	if q.VIP != nil {
		v.Set("vip", q.VIP.String())
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Backends {
		v.Set("backends", "1")
	}
	return v
}

// parseLBServiceQuery reads the query of an lb request; a malformed one is
// refused before anything is read.
func parseLBServiceQuery(r *http.Request) (LBServiceQuery, error) {
	v := r.URL.Query()
	q := LBServiceQuery{Name: v.Get("name"), After: v.Get("after")}
	if v.Has("vip") {
		sel, err := ParseVIPSelector(v.Get("vip"))
		if err != nil {
			return q, err
		}
		q.VIP = &sel
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > MaxLBPage {
			return q, fmt.Errorf("bad limit %q: a number from 0 (all) to %d", s, MaxLBPage)
		}
		q.Limit = n
	}
	switch b := v.Get("backends"); b {
	case "", "0", "false":
	case "1", "true":
		q.Backends = true
	default:
		return q, fmt.Errorf("bad backends %q: use 1 or 0", b)
	}
	return q, nil
}
