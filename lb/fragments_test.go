package lb

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/config"
)

func TestEntriesAddFragmentsOnly(t *testing.T) {
	vip := netip.MustParseAddr("fd00:300::10")
	dns := config.Service{Name: "dns", VIP: vip, Port: 53, Protocol: "udp"}
	dns2 := config.Service{Name: "dns-alt", VIP: vip, Port: 5353, Protocol: "udp"}
	web := config.Service{Name: "web", VIP: vip, Port: 443, Protocol: "tcp"}
	anyTCP := config.Service{Name: "all-tcp", VIP: vip, Port: 0, Protocol: "tcp"}
	type want struct {
		name  string
		port  int
		proto string
		frag  bool
	}
	for _, tc := range []struct {
		name string
		in   []config.Service
		want []want
	}{
		{"one fragments entry per VIP and protocol, from the first service",
			[]config.Service{dns, web, dns2},
			[]want{{"dns", 53, "udp", false}, {"web", 443, "tcp", false}, {"dns-alt", 5353, "udp", false},
				{"dns", 0, "udp", true}, {"web", 0, "tcp", true}}},
		{"a port-0 service of the protocol takes the fragments itself",
			[]config.Service{web, anyTCP},
			[]want{{"web", 443, "tcp", false}, {"all-tcp", 0, "tcp", false}}},
		{"nothing else", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []want
			for _, e := range entries(tc.in) {
				frag := e.flags == bpf.DatapathVipFlagsVIP_F_FRAGMENTS_ONLY
				got = append(got, want{e.svc.Name, e.svc.Port, e.svc.Protocol, frag})
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("entries:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// A UDP port service gets a fragments-only port-0 entry with the same
// backends (so the same table); a port-0 service replaces it; removing the
// service removes it.
func TestProgrammerFragmentsEntry(t *testing.T) {
	maps := loadMaps(t)
	p, err := NewProgrammer(maps, testTableSize)
	if err != nil {
		t.Fatal(err)
	}
	dns := svc("fd00:2::1", "fd00:2::2")
	dns.Name, dns.Port, dns.Protocol = "dns", 53, "udp"
	if err := p.Sync([]config.Service{dns}, all); err != nil {
		t.Fatal(err)
	}
	frag, ok := vipEntry(t, maps, "fd00:300::10", 17, 0)
	if !ok || frag.Flags != uint32(bpf.DatapathVipFlagsVIP_F_FRAGMENTS_ONLY) {
		t.Fatalf("fragments entry %+v present %v, want flag VIP_F_FRAGMENTS_ONLY", frag, ok)
	}
	port, _ := vipEntry(t, maps, "fd00:300::10", 17, 53)
	if frag.VipId == port.VipId {
		t.Fatal("the fragments entry shares the service's vip_id (and counters)")
	}
	if got, want := kernelTable(t, maps, frag.VipId), p.Table(dns.VIP, "udp", 53); !slices.Equal(got, want) {
		t.Fatal("the fragments entry's table differs from the service's")
	}

	all0 := dns
	all0.Name, all0.Port = "dns-any", 0
	if err := p.Sync([]config.Service{dns, all0}, all); err != nil {
		t.Fatal(err)
	}
	if v, _ := vipEntry(t, maps, "fd00:300::10", 17, 0); v.Flags != 0 || v.VipId != frag.VipId {
		t.Fatalf("with a port-0 service the entry is %+v, want the same vip_id %d without flags", v, frag.VipId)
	}

	if err := p.Sync(nil, all); err != nil {
		t.Fatal(err)
	}
	if _, ok := vipEntry(t, maps, "fd00:300::10", 17, 0); ok {
		t.Fatal("port-0 entry left after its services were removed")
	}
}
