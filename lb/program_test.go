package lb

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/testutil"
)

const testTableSize = 1021

func loadMaps(t *testing.T) bpf.LBMaps {
	t.Helper()
	testutil.RequirePrivileged(t)
	objs, err := bpf.LoadObjects(bpf.Config{MaglevTableSize: testTableSize, ConntrackSize: 4096}, nil)
	if err != nil {
		t.Fatalf("load datapath: %v", err)
	}
	t.Cleanup(func() { objs.Close() })
	return objs.LB
}

func svc(backends ...string) config.Service {
	s := config.Service{Name: "web", VIP: netip.MustParseAddr("fd00:300::10"), Port: 443, Protocol: "tcp"}
	for _, b := range backends {
		s.Backends = append(s.Backends, config.Backend{Address: netip.MustParseAddr(b), Weight: 100})
	}
	return s
}

func all(string, netip.Addr) bool { return true }

// shares counts the Maglev slots per backend id.
func shares(tbl []uint32) map[uint32]int {
	m := map[uint32]int{}
	for _, id := range tbl {
		m[id]++
	}
	return m
}

func vipEntry(t *testing.T, maps bpf.LBMaps, addr string, proto uint8, port uint16) (bpf.DatapathVipValue, bool) {
	t.Helper()
	k := bpf.VIPKey(netip.MustParseAddr(addr), proto, port)
	var v bpf.DatapathVipValue
	err := maps.Vips.Lookup(&k, &v)
	return v, err == nil
}

// kernelTable reads the Maglev table the kernel holds for vid.
func kernelTable(t *testing.T, maps bpf.LBMaps, vid uint32) []uint32 {
	t.Helper()
	var id ebpf.MapID
	if err := maps.Maglev.Lookup(vid, &id); err != nil {
		t.Fatalf("maglev table of vip %d: %v", vid, err)
	}
	inner, err := ebpf.NewMapFromID(id)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	out := make([]uint32, inner.MaxEntries())
	for i := range out {
		if err := inner.Lookup(uint32(i), &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestProgrammerFollowsServicesAndHealth(t *testing.T) {
	maps := loadMaps(t)
	p, err := NewProgrammer(maps, testTableSize)
	if err != nil {
		t.Fatal(err)
	}
	s := svc("fd00:100::1", "fd00:100::2", "fd00:100::3")
	if err := p.Sync([]config.Service{s}, all); err != nil {
		t.Fatal(err)
	}
	sv, ok := vipEntry(t, maps, "fd00:300::10", 6, 443)
	if !ok {
		t.Fatal("service entry missing from vips")
	}
	if _, ok := vipEntry(t, maps, "fd00:300::10", 0, 0); !ok {
		t.Fatal("address entry missing from vips")
	}
	if !slices.Equal(kernelTable(t, maps, sv.VipId), p.Table(s.VIP, "tcp", 443)) {
		t.Fatal("the kernel's Maglev table differs from the one programmed")
	}
	sh := shares(kernelTable(t, maps, sv.VipId))
	if len(sh) != 3 || sh[0] != 0 {
		t.Fatalf("table shares %v: want 3 backends and no empty slot", sh)
	}
	for id, n := range sh {
		if n < testTableSize/3-1 || n > testTableSize/3+1 {
			t.Errorf("backend %d has %d of %d slots", id, n, testTableSize)
		}
	}

	// An unhealthy backend leaves the table but keeps its id and entry.
	bad := netip.MustParseAddr("fd00:100::2")
	badID := p.BackendID(bad)
	if err := p.Sync([]config.Service{s}, func(_ string, a netip.Addr) bool { return a != bad }); err != nil {
		t.Fatal(err)
	}
	if n := shares(kernelTable(t, maps, sv.VipId))[badID]; n != 0 {
		t.Fatalf("unhealthy backend still has %d slots", n)
	}
	var be bpf.DatapathBackend
	if err := maps.Backends.Lookup(badID, &be); err != nil || be.Flags&uint32(bpf.DatapathBackendFlagsBACKEND_F_VALID) == 0 {
		t.Fatal("an unhealthy backend lost its entry: its established flows would break")
	}

	// Removing a backend frees its entry; a new backend gets a fresh id.
	s2 := svc("fd00:100::1", "fd00:100::3", "fd00:100::4")
	if err := p.Sync([]config.Service{s2}, all); err != nil {
		t.Fatal(err)
	}
	if err := maps.Backends.Lookup(badID, &be); err != nil || be.Flags != 0 {
		t.Fatalf("removed backend %d still valid", badID)
	}
	if id := p.BackendID(netip.MustParseAddr("fd00:100::4")); id == badID || id == 0 {
		t.Fatalf("new backend got id %d (the freed id was %d): ids must not be reused at once", id, badID)
	}

	// A restart adopts the ids from the maps.
	ids := map[string]uint32{}
	for _, b := range s2.Backends {
		ids[b.Address.String()] = p.BackendID(b.Address)
	}
	p2, err := NewProgrammer(maps, testTableSize)
	if err != nil {
		t.Fatal(err)
	}
	for a, id := range ids {
		if got := p2.BackendID(netip.MustParseAddr(a)); got != id {
			t.Errorf("after restart backend %s has id %d, was %d", a, got, id)
		}
	}
	if err := p2.Sync([]config.Service{s2}, all); err != nil {
		t.Fatal(err)
	}
	if sv2, _ := vipEntry(t, maps, "fd00:300::10", 6, 443); sv2.VipId != sv.VipId {
		t.Fatalf("vip id changed across restart: %d -> %d", sv.VipId, sv2.VipId)
	}

	// Allow lists set the flag; removing the service removes its entries.
	s2.AllowSources = []netip.Prefix{netip.MustParsePrefix("fd00::/8")}
	if err := p2.Sync([]config.Service{s2}, all); err != nil {
		t.Fatal(err)
	}
	if v, _ := vipEntry(t, maps, "fd00:300::10", 6, 443); v.Flags&uint32(bpf.DatapathVipFlagsVIP_F_ALLOWLIST) == 0 {
		t.Fatal("allow-sources did not set VIP_F_ALLOWLIST")
	}
	if err := p2.Sync(nil, all); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		proto uint8
		port  uint16
	}{{6, 443}, {0, 0}} {
		if _, ok := vipEntry(t, maps, "fd00:300::10", k.proto, k.port); ok {
			t.Errorf("vips entry %d/%d left after the service was removed", k.proto, k.port)
		}
	}
}
