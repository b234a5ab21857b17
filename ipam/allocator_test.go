package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = netip.MustParsePrefix(x)
	}
	return out
}

var testPools = []Pool{
	{Name: "pods", Kind: KindPod, Prefixes: pfx("fd00:10:0:1::/64", "10.10.1.0/30")},
	{Name: "vms", Kind: KindVM, Prefixes: pfx("fd00:20::/120", "10.20.0.0/24")},
	{Name: "services", Kind: KindService, Prefixes: pfx("fd00:30::/124", "10.30.0.0/29")},
	{Name: "services2", Kind: KindService, Prefixes: pfx("fd00:31::/124")},
}

func open(t *testing.T, path string, mut ...func(*Options)) *Allocator {
	t.Helper()
	o := Options{Path: path, Pools: testPools, LockTimeout: 100 * time.Millisecond}
	for _, m := range mut {
		m(&o)
	}
	a, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func newAlloc(t *testing.T, mut ...func(*Options)) (*Allocator, string) {
	path := filepath.Join(t.TempDir(), "ipam.db")
	return open(t, path, mut...), path
}

func mustAlloc(t *testing.T, a *Allocator, r Request) Allocation {
	t.Helper()
	al, err := a.Allocate(r)
	if err != nil {
		t.Fatalf("Allocate(%+v): %v", r, err)
	}
	return al
}

func TestAllocateSkipsReservedAndIsIdempotent(t *testing.T) {
	a, _ := newAlloc(t)
	got := mustAlloc(t, a, Request{Owner: "endpoint/a", Family: IPv6, Kind: KindPod})
	if got.Addr != netip.MustParseAddr("fd00:10:0:1::1") || got.Pool != "pods" || got.Kind != KindPod {
		t.Fatalf("first pod address %+v, want fd00:10:0:1::1 from pods (never the Subnet-Router anycast ::)", got)
	}
	again := mustAlloc(t, a, Request{Owner: "endpoint/a", Family: IPv6, Kind: KindPod})
	if again.Addr != got.Addr {
		t.Fatalf("same owner got %s then %s", got.Addr, again.Addr)
	}
	// IPv4 /30: only .1 and .2, never the network or broadcast address.
	var v4 []string
	for i := range 2 {
		v4 = append(v4, mustAlloc(t, a, Request{Owner: fmt.Sprintf("endpoint/%d", i), Family: IPv4, Kind: KindPod}).Addr.String())
	}
	if strings.Join(v4, " ") != "10.10.1.1 10.10.1.2" {
		t.Fatalf("IPv4 /30 handed out %v, want 10.10.1.1 10.10.1.2", v4)
	}
	if _, err := a.Allocate(Request{Owner: "endpoint/x", Family: IPv4, Kind: KindPod}); !errors.Is(err, ErrExhausted) {
		t.Fatalf("third address of a /30: %v, want ErrExhausted", err)
	}
	if l := a.Lookup("endpoint/a"); len(l) != 1 || l[0].Addr != got.Addr {
		t.Fatalf("Lookup = %+v", l)
	}
}

func TestAllocateWholeIPv4PoolThenRelease(t *testing.T) {
	a, _ := newAlloc(t)
	seen := map[netip.Addr]bool{}
	for i := range 254 {
		al := mustAlloc(t, a, Request{Owner: fmt.Sprintf("vm/%d", i), Family: IPv4, Pool: "vms"})
		if seen[al.Addr] || excluded(netip.MustParsePrefix("10.20.0.0/24"), al.Addr) {
			t.Fatalf("allocation %d: %s handed out twice or reserved", i, al.Addr)
		}
		seen[al.Addr] = true
	}
	if _, err := a.Allocate(Request{Owner: "vm/full", Family: IPv4, Pool: "vms"}); !errors.Is(err, ErrExhausted) {
		t.Fatalf("255th allocation in a /24: %v, want ErrExhausted", err)
	}
	rel, err := a.Release("vm/100")
	if err != nil || len(rel) != 1 {
		t.Fatalf("Release: %v %+v", err, rel)
	}
	al := mustAlloc(t, a, Request{Owner: "vm/new", Family: IPv4, Pool: "vms"})
	if al.Addr != rel[0].Addr {
		t.Fatalf("after releasing %s the full pool gave %s", rel[0].Addr, al.Addr)
	}
	if rel, err := a.Release("vm/never"); err != nil || len(rel) != 0 {
		t.Fatalf("releasing an unknown owner: %v %+v, want nothing and no error", err, rel)
	}
	st := a.Pools()
	if st[1].Name != "vms" || st[1].Used[IPv4] != 254 || st[1].Size.String() != "509" { // 255 + 254
		t.Fatalf("vms status %+v", st[1])
	}
}

func TestReleasedAddressNotReusedAtOnce(t *testing.T) {
	a, _ := newAlloc(t)
	first := mustAlloc(t, a, Request{Owner: "e/1", Family: IPv6, Kind: KindPod})
	if _, err := a.Release("e/1"); err != nil {
		t.Fatal(err)
	}
	second := mustAlloc(t, a, Request{Owner: "e/2", Family: IPv6, Kind: KindPod})
	if second.Addr == first.Addr {
		t.Fatalf("a released address (%s) was handed out again at once", first.Addr)
	}
}

func TestAllocateSkipsNodeAddresses(t *testing.T) {
	node := []netip.Addr{netip.MustParseAddr("fd00:10:0:1::1"), netip.MustParseAddr("fd00:10:0:1::2")}
	a, _ := newAlloc(t, func(o *Options) { o.NodeAddrs = func() ([]netip.Addr, error) { return node, nil } })
	if got := mustAlloc(t, a, Request{Owner: "e/1", Family: IPv6, Kind: KindPod}).Addr; got != netip.MustParseAddr("fd00:10:0:1::3") {
		t.Fatalf("got %s, want fd00:10:0:1::3 (::1 and ::2 are configured on the node)", got)
	}
	b, _ := newAlloc(t, func(o *Options) {
		o.NodeAddrs = func() ([]netip.Addr, error) { return nil, errors.New("netlink down") }
	})
	if _, err := b.Allocate(Request{Owner: "e/1", Family: IPv6, Kind: KindPod}); err == nil || !strings.Contains(err.Error(), "netlink down") {
		t.Fatalf("allocation without knowing the node's addresses: %v, want the error", err)
	}
}

func TestKindAndPoolSelection(t *testing.T) {
	a, _ := newAlloc(t)
	// The first service pool has 15 usable IPv6 addresses; the 16th comes
	// from the second.
	var last Allocation
	for i := range 16 {
		last = mustAlloc(t, a, Request{Owner: fmt.Sprintf("service/%d", i), Family: IPv6, Kind: KindService})
	}
	if last.Pool != "services2" || last.Addr != netip.MustParseAddr("fd00:31::1") {
		t.Fatalf("16th service VIP %+v, want fd00:31::1 from services2", last)
	}
	for _, c := range []struct {
		req  Request
		want error
	}{
		{Request{Owner: "x", Family: IPv6, Pool: "nope"}, ErrNoPool},
		{Request{Owner: "x", Family: IPv6, Pool: "vms", Kind: KindService}, ErrNoPool},
		{Request{Owner: "x", Family: IPv4, Pool: "services2"}, ErrExhausted}, // no IPv4 prefix
		{Request{Owner: "service/0", Family: IPv6, Pool: "services2"}, ErrConflict},
		{Request{Owner: "service/0", Family: IPv6, Kind: KindPod}, ErrConflict},
	} {
		if _, err := a.Allocate(c.req); !errors.Is(err, c.want) {
			t.Errorf("Allocate(%+v) = %v, want %v", c.req, err, c.want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	a, _ := newAlloc(t)
	for _, r := range []Request{
		{Family: IPv6, Kind: KindPod},
		{Owner: strings.Repeat("o", MaxOwnerLen+1), Family: IPv6, Kind: KindPod},
		{Owner: "a b", Family: IPv6, Kind: KindPod},
		{Owner: "a\x00b", Family: IPv6, Kind: KindPod},
		{Owner: "a", Family: "ipv5", Kind: KindPod},
		{Owner: "a", Family: IPv6},
	} {
		if _, err := a.Allocate(r); err == nil {
			t.Errorf("Allocate(%q) succeeded", r)
		}
	}
	if len(a.Allocations("")) != 0 {
		t.Fatal("a bad request left an allocation")
	}
}

func TestReserve(t *testing.T) {
	a, _ := newAlloc(t)
	vip := netip.MustParseAddr("fd00:30::1")
	if _, err := a.Reserve("service/explicit", vip); err != nil {
		t.Fatal(err)
	}
	if al, err := a.Reserve("service/explicit", vip); err != nil || !al.Reserved || al.Pool != "services" {
		t.Fatalf("reserving again: %+v %v", al, err)
	}
	if _, err := a.Reserve("service/other", vip); !errors.Is(err, ErrConflict) {
		t.Fatalf("another owner reserving %s: %v, want ErrConflict", vip, err)
	}
	if _, err := a.Reserve("service/explicit", netip.MustParseAddr("fd00:30::2")); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second IPv6 address for one owner: %v, want ErrConflict", err)
	}
	if _, err := a.Reserve("x", netip.MustParseAddr("2001:db8::1")); !errors.Is(err, ErrNoPool) {
		t.Fatalf("reserving outside every pool: %v, want ErrNoPool", err)
	}
	// The first service VIP Allocate hands out skips the reserved one.
	if got := mustAlloc(t, a, Request{Owner: "service/auto", Family: IPv6, Kind: KindService}).Addr; got == vip {
		t.Fatalf("Allocate handed out the reserved %s", vip)
	}
	if h, ok := a.Holder(vip); !ok || h.Owner != "service/explicit" {
		t.Fatalf("Holder(%s) = %+v %v", vip, h, ok)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	a, path := newAlloc(t)
	var want []Allocation
	for i := range 5 {
		want = append(want, mustAlloc(t, a, Request{Owner: fmt.Sprintf("e/%d", i), Family: IPv6, Kind: KindPod}))
	}
	if _, err := a.Reserve("service/x", netip.MustParseAddr("10.30.0.3")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Release("e/4"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := a.Allocate(Request{Owner: "late", Family: IPv6, Kind: KindPod}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Allocate after Close: %v", err)
	}
	b := open(t, path)
	got := b.Allocations("pods")
	if len(got) != 4 {
		t.Fatalf("after reopen %d pod allocations, want 4: %+v", len(got), got)
	}
	for i, al := range got {
		if al.Addr != want[i].Addr || al.Owner != want[i].Owner || !al.Created.Equal(want[i].Created) {
			t.Fatalf("after reopen %+v, want %+v", al, want[i])
		}
	}
	if h, ok := b.Holder(netip.MustParseAddr("10.30.0.3")); !ok || !h.Reserved {
		t.Fatalf("reservation lost: %+v", h)
	}
	// The cursor survived: the released e/4 address is not reused first.
	if n := mustAlloc(t, b, Request{Owner: "e/5", Family: IPv6, Kind: KindPod}); n.Addr == want[4].Addr {
		t.Fatalf("after reopen the released %s was handed out again first", n.Addr)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	_, path := newAlloc(t)
	_, err := Open(Options{Path: path, LockTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "another aird") {
		t.Fatalf("second Open of a held store: %v", err)
	}
}

func TestCorruptStoreIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.db")
	if err := os.WriteFile(path, []byte("not a bbolt file, not at all, and long enough to be read as one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a, err := Open(Options{Path: path}); err == nil {
		a.Close()
		t.Fatal("Open of a corrupt store succeeded")
	}
}

func TestOrphansAfterPoolChange(t *testing.T) {
	a, _ := newAlloc(t)
	al := mustAlloc(t, a, Request{Owner: "vm/1", Family: IPv6, Pool: "vms"})
	if err := a.SetPools(testPools[:1]); err != nil {
		t.Fatal(err)
	}
	got := a.Lookup("vm/1")
	if len(got) != 1 || !got[0].Orphan || got[0].Pool != "vms" || got[0].Addr != al.Addr {
		t.Fatalf("after removing its pool: %+v, want the allocation kept as an orphan", got)
	}
	if err := a.SetPools([]Pool{{Name: "a", Kind: KindVM, Prefixes: pfx("fd00::/64")}, {Name: "b", Kind: KindVM, Prefixes: pfx("fd00::/48")}}); err == nil {
		t.Fatal("SetPools accepted overlapping pools")
	}
}

func TestLimit(t *testing.T) {
	a, _ := newAlloc(t, func(o *Options) { o.MaxAllocations = 2 })
	mustAlloc(t, a, Request{Owner: "a", Family: IPv6, Kind: KindPod})
	mustAlloc(t, a, Request{Owner: "b", Family: IPv6, Kind: KindPod})
	if _, err := a.Allocate(Request{Owner: "c", Family: IPv6, Kind: KindPod}); !errors.Is(err, ErrLimit) {
		t.Fatalf("third allocation with a limit of 2: %v", err)
	}
	mustAlloc(t, a, Request{Owner: "a", Family: IPv6, Kind: KindPod}) // idempotent: not a new one
}
