package ipam

import (
	"errors"
	"testing"
)

// AllocateAll gives an owner one address per family in one transaction,
// the same as Allocate would, all or nothing; optional requests without a
// pool are left out.
func TestAllocateAll(t *testing.T) {
	a, path := newAlloc(t)
	reqs := []Request{{Owner: "endpoint/a", Family: IPv6, Kind: KindPod}, {Owner: "endpoint/a", Family: IPv4, Kind: KindPod}}
	als, err := a.AllocateAll(reqs, false)
	if err != nil || len(als) != 2 || !als[0].Addr.Is6() || !als[1].Addr.Is4() {
		t.Fatalf("AllocateAll: %+v, %v", als, err)
	}
	// Idempotent, and the same as Allocate.
	again, err := a.AllocateAll(reqs, false)
	if err != nil || again[0].Addr != als[0].Addr || again[1].Addr != als[1].Addr {
		t.Fatalf("again: %+v, %v", again, err)
	}
	if al := mustAlloc(t, a, reqs[0]); al.Addr != als[0].Addr {
		t.Fatalf("Allocate gives %s, AllocateAll gave %s", al.Addr, als[0].Addr)
	}
	// Two owners in one call never get the same address.
	two, err := a.AllocateAll([]Request{{Owner: "endpoint/b", Family: IPv6, Kind: KindPod}, {Owner: "endpoint/c", Family: IPv6, Kind: KindPod}}, false)
	if err != nil || two[0].Addr == two[1].Addr {
		t.Fatalf("two owners: %+v, %v", two, err)
	}
	// All or nothing: once the IPv4 /30 is full, a call whose second
	// request fails allocates nothing.
	mustAlloc(t, a, Request{Owner: "endpoint/e", Family: IPv4, Kind: KindPod})
	_, err = a.AllocateAll([]Request{{Owner: "endpoint/d", Family: IPv6, Kind: KindPod}, {Owner: "endpoint/d", Family: IPv4, Kind: KindPod}}, false)
	if !errors.Is(err, ErrExhausted) || len(a.Lookup("endpoint/d")) != 0 {
		t.Fatalf("exhausted: %v, held %v", err, a.Lookup("endpoint/d"))
	}
	// Optional: a family without a pool of the kind is left out (the
	// service pools have no IPv4 in services2).
	opt, err := a.AllocateAll([]Request{{Owner: "service/x", Family: IPv6, Pool: "services2"}, {Owner: "service/x", Family: IPv4, Pool: "nope"}}, true)
	if err != nil || len(opt) != 1 {
		t.Fatalf("optional: %+v, %v", opt, err)
	}
	if _, err := a.AllocateAll([]Request{{Owner: "service/y", Family: IPv4, Pool: "nope"}}, false); !errors.Is(err, ErrNoPool) {
		t.Fatalf("not optional: %v", err)
	}
	// On disk.
	a.Close()
	b := open(t, path)
	if got := b.Lookup("endpoint/a"); len(got) != 2 || got[0].Addr != als[0].Addr || got[1].Addr != als[1].Addr {
		t.Fatalf("after reopen: %+v", got)
	}
}
