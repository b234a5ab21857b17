package daemon

import (
	"fmt"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/ipam"
)

func (d *Daemon) allocator() (*ipam.Allocator, error) {
	a := d.ipam.allocator()
	if a == nil {
		return nil, fmt.Errorf("ipam: %w", ipam.ErrClosed)
	}
	return a, nil
}

// IPAMPools implements api.IPAMBackend.
func (d *Daemon) IPAMPools() ([]ipam.PoolStatus, error) {
	a, err := d.allocator()
	if err != nil {
		return nil, err
	}
	return a.Pools(), nil
}

// IPAMAllocations implements api.IPAMBackend.
func (d *Daemon) IPAMAllocations(pool, owner string) ([]ipam.Allocation, error) {
	a, err := d.allocator()
	if err != nil {
		return nil, err
	}
	if owner != "" {
		out := a.Lookup(owner)
		if out == nil {
			out = []ipam.Allocation{}
		}
		return out, nil
	}
	if pool != "" && !hasPool(a, pool) {
		return nil, fmt.Errorf("pool %q: %w", pool, ipam.ErrNoPool)
	}
	return a.Allocations(pool), nil
}

func hasPool(a *ipam.Allocator, name string) bool {
	for _, p := range a.Pools() {
		if p.Name == name {
			return true
		}
	}
	return false
}

// IPAMAllocate implements api.IPAMBackend.
func (d *Daemon) IPAMAllocate(req api.IPAMAllocate) (ipam.Allocation, error) {
	a, err := d.allocator()
	if err != nil {
		return ipam.Allocation{}, err
	}
	al, err := a.Allocate(ipam.Request{Owner: req.Owner, Family: req.Family, Pool: req.Pool, Kind: req.Kind})
	if err == nil {
		d.log.Info("ipam: allocated through the API", "owner", al.Owner, "address", al.Addr, "pool", al.Pool)
	}
	return al, err
}

// IPAMReserve implements api.IPAMBackend.
func (d *Daemon) IPAMReserve(req api.IPAMReserve) (ipam.Allocation, error) {
	a, err := d.allocator()
	if err != nil {
		return ipam.Allocation{}, err
	}
	al, err := a.Reserve(req.Owner, req.Address)
	if err == nil {
		d.log.Info("ipam: reserved through the API", "owner", al.Owner, "address", al.Addr, "pool", al.Pool)
	}
	return al, err
}

// IPAMRelease implements api.IPAMBackend.
func (d *Daemon) IPAMRelease(req api.IPAMRelease) ([]ipam.Allocation, error) {
	a, err := d.allocator()
	if err != nil {
		return nil, err
	}
	out, err := a.Release(req.Owner)
	for _, al := range out {
		d.log.Info("ipam: released through the API", "owner", al.Owner, "address", al.Addr, "pool", al.Pool)
	}
	return out, err
}
