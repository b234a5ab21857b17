package daemon

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/internal/config"
)

func nlAddr(t *testing.T, link int, cidr, peer string) netlink.Addr {
	t.Helper()
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	a := netlink.Addr{IPNet: n, LinkIndex: link}
	if peer != "" {
		_, p, err := net.ParseCIDR(peer)
		if err != nil {
			t.Fatal(err)
		}
		a.Peer = p
	}
	return a
}

func TestClassifyAddrs(t *testing.T) {
	addrs := []netlink.Addr{
		nlAddr(t, 1, "127.0.0.1/8", ""),
		nlAddr(t, 1, "::1/128", ""),
		nlAddr(t, 1, "fd00:300::10/128", ""), // a served VIP on lo
		nlAddr(t, 2, "fd00:2::2/64", ""),     // uplink
		nlAddr(t, 2, "fe80::1/64", ""),       // uplink, link-local
		nlAddr(t, 2, "192.0.2.7/24", ""),     // uplink
		nlAddr(t, 3, "10.0.0.1/32", "10.0.0.2/32"),
		nlAddr(t, 4, "198.51.100.9/24", ""), // not an uplink
	}
	local, onLink := classifyAddrs(addrs, map[int]bool{2: true, 3: true})
	wantLocal := []netip.Addr{}
	for _, s := range []string{"10.0.0.1", "192.0.2.7", "198.51.100.9", "fd00:2::2", "fd00:300::10"} {
		wantLocal = append(wantLocal, netip.MustParseAddr(s))
	}
	if !slices.Equal(local, wantLocal) {
		t.Errorf("local = %v, want %v", local, wantLocal)
	}
	wantOnLink := []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("fd00:2::/64")}
	if !slices.Equal(onLink, wantOnLink) {
		t.Errorf("on-link = %v, want %v", onLink, wantOnLink)
	}
}

func TestResolveTunnelSources(t *testing.T) {
	onLink := []netip.Prefix{netip.MustParsePrefix("fd00:2::/64")}
	p := func(s string) config.TunnelSource { return config.TunnelSource{Prefix: netip.MustParsePrefix(s)} }
	kw := func(s string) config.TunnelSource { return config.TunnelSource{Keyword: s} }
	for _, c := range []struct {
		name string
		cfg  []config.TunnelSource
		want []string
	}{
		{"absent: on-link", nil, []string{"fd00:2::/64"}},
		{"explicit prefixes only", []config.TunnelSource{p("fd00:1::/64"), p("10.1.0.0/16")}, []string{"10.1.0.0/16", "fd00:1::/64"}},
		{"prefixes and on-link", []config.TunnelSource{p("fd00:1::/64"), kw("on-link")}, []string{"fd00:1::/64", "fd00:2::/64"}},
		{"a prefix also on-link once", []config.TunnelSource{p("fd00:2::/64"), kw("on-link")}, []string{"fd00:2::/64"}},
		{"none", []config.TunnelSource{kw("none")}, nil},
	} {
		got := resolveTunnelSources(c.cfg, onLink)
		var want []netip.Prefix
		for _, s := range c.want {
			want = append(want, netip.MustParsePrefix(s))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", c.name, got, want)
		}
	}
}
