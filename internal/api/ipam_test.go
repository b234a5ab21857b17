package api

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/aird-net/aird/ipam"
)

// ipamBackend puts a real allocator (in a temporary store) behind the API.
type ipamBackend struct {
	fakeBackend
	a *ipam.Allocator
}

func (b *ipamBackend) IPAMPools() ([]ipam.PoolStatus, error) { return b.a.Pools(), nil }
func (b *ipamBackend) IPAMAllocations(pool, owner string) ([]ipam.Allocation, error) {
	if owner != "" {
		return b.a.Lookup(owner), nil
	}
	return b.a.Allocations(pool), nil
}
func (b *ipamBackend) IPAMAllocate(r IPAMAllocate) (ipam.Allocation, error) {
	return b.a.Allocate(ipam.Request{Owner: r.Owner, Family: r.Family, Pool: r.Pool, Kind: r.Kind})
}
func (b *ipamBackend) IPAMReserve(r IPAMReserve) (ipam.Allocation, error) {
	return b.a.Reserve(r.Owner, r.Address)
}
func (b *ipamBackend) IPAMRelease(r IPAMRelease) ([]ipam.Allocation, error) {
	return b.a.Release(r.Owner)
}

func TestIPAMRequests(t *testing.T) {
	a, err := ipam.Open(ipam.Options{Path: filepath.Join(t.TempDir(), "ipam.db"), Pools: []ipam.Pool{
		{Name: "pods", Kind: ipam.KindPod, Prefixes: []netip.Prefix{netip.MustParsePrefix("fd00:10::/64")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c, _ := serve(t, &ipamBackend{a: a})
	ctx := context.Background()
	var al ipam.Allocation
	if err := c.Do(ctx, "POST", "/v1/ipam/allocate", IPAMAllocate{Owner: "cni/x", Family: ipam.IPv6, Kind: ipam.KindPod}, &al); err != nil ||
		al.Addr != netip.MustParseAddr("fd00:10::1") {
		t.Fatalf("allocate: %+v %v", al, err)
	}
	for _, c2 := range []struct {
		name, method, path string
		body               any
		code               int
	}{
		{"unknown field", "POST", "/v1/ipam/allocate", map[string]any{"owner": "a", "family": "ipv6", "kind": "pod", "x": 1}, 400},
		{"bad family", "POST", "/v1/ipam/allocate", IPAMAllocate{Owner: "a", Family: "ipv5", Kind: ipam.KindPod}, 400},
		{"no owner", "POST", "/v1/ipam/allocate", IPAMAllocate{Family: ipam.IPv6, Kind: ipam.KindPod}, 400},
		{"unknown pool", "POST", "/v1/ipam/allocate", IPAMAllocate{Owner: "a", Family: ipam.IPv6, Pool: "nope"}, 404},
		{"no IPv4 prefix", "POST", "/v1/ipam/allocate", IPAMAllocate{Owner: "a", Family: ipam.IPv4, Pool: "pods"}, 409},
		{"service owner", "POST", "/v1/ipam/allocate", IPAMAllocate{Owner: "service/web", Family: ipam.IPv6, Kind: ipam.KindPod}, 403},
		{"endpoint owner release", "POST", "/v1/ipam/release", IPAMRelease{Owner: "endpoint/web"}, 403},
		{"reserve held", "POST", "/v1/ipam/reserve", IPAMReserve{Owner: "cni/y", Address: al.Addr}, 409},
		{"reserve outside", "POST", "/v1/ipam/reserve", IPAMReserve{Owner: "cni/y", Address: netip.MustParseAddr("2001:db8::1")}, 404},
		{"GET allocate", "GET", "/v1/ipam/allocate", nil, 404},
	} {
		err := c.Do(ctx, c2.method, c2.path, c2.body, nil)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != c2.code {
			t.Errorf("%s: %v, want HTTP %d", c2.name, err, c2.code)
		}
	}
	var as []ipam.Allocation
	if err := c.Do(ctx, "GET", "/v1/ipam/allocations", nil, &as); err != nil || len(as) != 1 {
		t.Fatalf("after the bad requests: %+v %v, want only cni/x", as, err)
	}
	if err := c.Do(ctx, "POST", "/v1/ipam/release", IPAMRelease{Owner: "cni/x"}, &as); err != nil || len(as) != 1 || as[0].Addr != al.Addr {
		t.Fatalf("release: %+v %v", as, err)
	}
	if err := c.Do(ctx, "POST", "/v1/ipam/release", IPAMRelease{Owner: "cni/x"}, &as); err != nil || len(as) != 0 {
		t.Fatalf("release again: %+v %v, want an empty list", as, err)
	}
	if err := c.Do(ctx, "GET", "/v1/ipam/pools", nil, nil); err != nil {
		t.Fatal(err)
	}
	c3, _ := serve(t, &fakeBackend{})
	var se *StatusError
	if err := c3.Do(ctx, "GET", "/v1/ipam/pools", nil, nil); !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("ipam on a backend without it: %v, want 404", err)
	}
}
