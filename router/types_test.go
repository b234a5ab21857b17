package router

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRequestValidation(t *testing.T) {
	vip := netip.MustParseAddr("fd00:300::10")
	for _, c := range []struct {
		name string
		req  Request
		err  string // "" valid
	}{
		{"container", Request{Name: "web-1", Netns: "/run/netns/c1"}, ""},
		{"vm", Request{Name: "vm.a_1", Tap: "tap0", MAC: "52:54:00:12:34:56"}, ""},
		{"vips", Request{Name: "w", Netns: "/run/netns/c1", VIPs: []netip.Addr{vip, vip}}, ""},
		{"empty name", Request{Netns: "/run/netns/c1"}, "name"},
		{"upper case", Request{Name: "Web", Netns: "/run/netns/c1"}, "name"},
		{"slash in name", Request{Name: "a/b", Netns: "/run/netns/c1"}, "name"},
		{"nul in name", Request{Name: "a\x00b", Netns: "/run/netns/c1"}, "name"},
		{"name too long", Request{Name: strings.Repeat("a", 64), Netns: "/run/netns/c1"}, "name"},
		{"neither netns nor tap", Request{Name: "a"}, "--netns"},
		{"both", Request{Name: "a", Netns: "/run/netns/c1", Tap: "tap0"}, "exclude"},
		{"relative netns", Request{Name: "a", Netns: "c1"}, "absolute"},
		{"long ifname", Request{Name: "a", Netns: "/run/netns/c1", Ifname: strings.Repeat("e", 16)}, "interface name"},
		{"ifname with slash", Request{Name: "a", Netns: "/run/netns/c1", Ifname: "e/0"}, "interface name"},
		{"mac for a container", Request{Name: "a", Netns: "/run/netns/c1", MAC: "52:54:00:12:34:56"}, "--mac"},
		{"bad mac", Request{Name: "a", Tap: "tap0", MAC: "zz"}, "mac"},
		{"bad family", Request{Name: "a", Netns: "/run/netns/c1", Families: []string{"ipx"}}, "family"},
		{"multicast vip", Request{Name: "a", Netns: "/run/netns/c1", VIPs: []netip.Addr{netip.MustParseAddr("ff02::1")}}, "unicast"},
		{"too many vips", Request{Name: "a", Netns: "/run/netns/c1", VIPs: make([]netip.Addr, MaxVIPs+1)}, "at most"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.req.validate()
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want one about %q", err, c.err)
			}
		})
	}
	r := Request{Name: "w", Netns: "/run/netns/c1", VIPs: []netip.Addr{vip, vip}}
	if err := r.validate(); err != nil || len(r.VIPs) != 1 || r.Ifname != "eth0" {
		t.Fatalf("normalized request: %+v, %v", r, err)
	}
}

func TestHostIfNames(t *testing.T) {
	a, b := hostIfName("web-1"), hostIfName("web-2")
	if a == b || len(a) > 15 || !isHostIfName(a) || !isHostIfName(b) {
		t.Fatalf("host names %q %q", a, b)
	}
	for _, n := range []string{"eth0", "air", "airxyzxyzxyzxyz", "air0123456789ab"} {
		if isHostIfName(n) {
			t.Errorf("%q taken for an endpoint link", n)
		}
	}
	m := endpointMAC("web-1")
	if m[0]&1 != 0 || m[0]&2 == 0 || m.String() == endpointMAC("web-2").String() {
		t.Fatalf("mac %s: want a locally administered unicast address per name", m)
	}
}
