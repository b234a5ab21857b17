package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

func TestSyncServices(t *testing.T) {
	a, path := newAlloc(t)
	explicit := netip.MustParseAddr("fd00:30::1")
	wants := []Want{
		{Owner: "service/web", Family: IPv6, Kind: KindService},
		{Owner: "service/dns", Addr: explicit},
		{Owner: "service/v4", Family: IPv4, Pool: "services"},
	}
	got, err := a.Sync("service/", wants)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Addr != netip.MustParseAddr("fd00:30::2") || got[1].Addr != explicit || !got[1].Reserved || got[2].Addr != netip.MustParseAddr("10.30.0.1") {
		t.Fatalf("first sync %+v: want web fd00:30::2 (the explicit ::1 is skipped), dns ::1 reserved, v4 10.30.0.1", got)
	}
	// An owner outside the prefix is untouched by syncs.
	other := mustAlloc(t, a, Request{Owner: "cni/x", Family: IPv6, Kind: KindService})

	// Stable: syncing the same again changes nothing, even after reopening.
	a.Close()
	a = open(t, path)
	again, err := a.Sync("service/", wants)
	if err != nil || again[0].Addr != got[0].Addr || again[2].Addr != got[2].Addr {
		t.Fatalf("second sync %+v %v, want the same addresses", again, err)
	}

	// Remove web and v4, move dns to a pool: dns keeps nothing of ::1 and
	// gets a pool address; ::1 goes back.
	res, err := a.Sync("service/", []Want{{Owner: "service/dns", Family: IPv6, Pool: "services2"}})
	if err != nil || res[0].Pool != "services2" {
		t.Fatalf("sync after removing: %+v %v", res, err)
	}
	if n := len(a.Allocations("services")); n != 1 { // only cni/x
		t.Fatalf("services pool holds %d allocations after the sync, want 1 (cni/x): %+v", n, a.Allocations("services"))
	}
	if l := a.Lookup("cni/x"); len(l) != 1 || l[0].Addr != other.Addr {
		t.Fatalf("sync touched an owner outside its prefix: %+v", l)
	}
}

func TestSyncIsAllOrNothing(t *testing.T) {
	a, _ := newAlloc(t)
	if _, err := a.Sync("service/", []Want{{Owner: "service/a", Family: IPv6, Kind: KindService}}); err != nil {
		t.Fatal(err)
	}
	held := a.Lookup("service/a")[0].Addr
	cni := mustAlloc(t, a, Request{Owner: "cni/z", Family: IPv6, Pool: "services2"})
	// b's explicit VIP is held by an owner outside the prefix: the whole
	// sync fails and a (which it would have released) keeps its address.
	_, err := a.Sync("service/", []Want{{Owner: "service/b", Addr: cni.Addr}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("sync onto a held address: %v, want ErrConflict", err)
	}
	if l := a.Lookup("service/a"); len(l) != 1 || l[0].Addr != held {
		t.Fatalf("a failed sync released service/a: %+v", l)
	}
	// A preferred address (the rollback of a reload) is taken when free.
	pref := netip.MustParseAddr("fd00:30::9")
	res, err := a.Sync("service/", []Want{{Owner: "service/c", Family: IPv6, Kind: KindService, Addr: pref}})
	if err != nil || res[0].Addr != pref || res[0].Reserved {
		t.Fatalf("preferred address: %+v %v", res, err)
	}
	if _, err := a.Sync("service/", []Want{{Owner: "cni/a", Family: IPv6, Kind: KindService}}); err == nil {
		t.Fatal("sync accepted an owner outside its prefix")
	}
	if _, err := a.Sync("service/", []Want{{Owner: "service/d", Addr: netip.MustParseAddr("fd00:30::3")}, {Owner: "service/d", Family: IPv6, Kind: KindService}}); err == nil {
		t.Fatal("sync accepted two IPv6 wants for one owner")
	}
}

// SyncOwners syncs the named owners alone: the others under the prefix
// keep what they hold though no want names them, a named owner without a
// want is released, and a want of an owner not named is refused.
func TestSyncOwners(t *testing.T) {
	a, _ := newAlloc(t)
	var wants []Want
	for i := range 10 {
		wants = append(wants, Want{Owner: fmt.Sprintf("service/s%d", i), Family: IPv6, Kind: KindService})
	}
	all, err := a.Sync("service/", wants)
	if err != nil {
		t.Fatal(err)
	}
	explicit := netip.MustParseAddr("fd00:31::e")
	got, err := a.SyncOwners("service/", []string{"service/s3", "service/s7", "service/new"},
		[]Want{{Owner: "service/s3", Addr: explicit}, {Owner: "service/new", Family: IPv6, Kind: KindService}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Addr != explicit || !got[0].Reserved || got[1].Addr == all[3].Addr {
		t.Fatalf("SyncOwners = %+v", got)
	}
	for i, al := range all {
		l := a.Lookup(al.Owner)
		switch i {
		case 3:
			if len(l) != 1 || l[0].Addr != explicit {
				t.Errorf("s3 holds %+v, want %s", l, explicit)
			}
		case 7:
			if len(l) != 0 {
				t.Errorf("s7 (named, no want) still holds %+v", l)
			}
		default:
			if len(l) != 1 || l[0].Addr != al.Addr {
				t.Errorf("%s (not named) holds %+v, had %s", al.Owner, l, al.Addr)
			}
		}
	}
	if _, err := a.SyncOwners("service/", []string{"service/s1"}, []Want{{Owner: "service/s2", Family: IPv6, Kind: KindService}}); err == nil {
		t.Error("a want of an owner not named was accepted")
	}
	if _, err := a.SyncOwners("service/", []string{"cni/x"}, nil); err == nil {
		t.Error("an owner outside the prefix was accepted")
	}
}
