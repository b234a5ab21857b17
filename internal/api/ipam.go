package api

import (
	"net/netip"
	"strings"

	"github.com/aird-net/aird/ipam"
)

// IPAMAllocate is the body of POST /v1/ipam/allocate: one address of a
// family for an owner, from a named pool or any pool of a kind.
type IPAMAllocate struct {
	Owner  string      `json:"owner"`
	Family ipam.Family `json:"family"`
	Pool   string      `json:"pool,omitempty"`
	Kind   ipam.Kind   `json:"kind,omitempty"`
}

// IPAMReserve is the body of POST /v1/ipam/reserve: record an address the
// caller chose.
type IPAMReserve struct {
	Owner   string     `json:"owner"`
	Address netip.Addr `json:"address"`
}

// IPAMRelease is the body of POST /v1/ipam/release: free every address of
// the owner.
type IPAMRelease struct {
	Owner string `json:"owner"`
}

// IPAMBackend is implemented by a daemon that runs the allocator.
type IPAMBackend interface {
	IPAMPools() ([]ipam.PoolStatus, error)
	// IPAMAllocations lists one pool's allocations ("" for all), or one
	// owner's when owner is set.
	IPAMAllocations(pool, owner string) ([]ipam.Allocation, error)
	IPAMAllocate(IPAMAllocate) (ipam.Allocation, error)
	IPAMReserve(IPAMReserve) (ipam.Allocation, error)
	IPAMRelease(IPAMRelease) ([]ipam.Allocation, error)
}

// DaemonOwnerPrefixes are the owner namespaces aird manages itself (service
// VIPs from [[services]], endpoints from the endpoint API); the ipam API
// refuses to change them so a client cannot take a VIP from under a service.
var DaemonOwnerPrefixes = []string{"service/", "endpoint/"}

// daemonOwned reports whether owner is in a namespace aird manages.
func daemonOwned(owner string) bool {
	for _, p := range DaemonOwnerPrefixes {
		if strings.HasPrefix(owner, p) {
			return true
		}
	}
	return false
}
