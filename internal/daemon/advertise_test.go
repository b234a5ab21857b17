package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/config"
)

// TestAdvertiseKeys: [bgp.advertise] decides what the node announces, as
// docs/configuration.md says: pod-prefixes the node's pod prefixes and its
// VM endpoints' host routes, service-vips the serving VIPs (with their
// services' communities); a VIP that is not serving is never announced.
func TestAdvertiseKeys(t *testing.T) {
	const serving, idle, vm = "fd00:300::10", "fd00:300::11", "fd00:400::5"
	for _, c := range []struct {
		pods, vips bool
		want       []string
	}{
		{true, true, []string{"fd00:200:0:1::/64", "fd00:300::10/128 [65001:7]", "fd00:400::5/128"}},
		{false, true, []string{"fd00:300::10/128 [65001:7]"}},
		{true, false, []string{"fd00:200:0:1::/64", "fd00:400::5/128"}},
		{false, false, nil},
	} {
		src := fmt.Sprintf(`[node]
underlay = ["fd00:1::1"]
router-id = "10.0.0.1"
[bgp]
asn = 65001
advertise = { pod-prefixes = %v, service-vips = %v }
[ipam]
pod-prefixes = ["fd00:200:0:1::/64"]
[[ipam.pools]]
name = "pods"
kind = "pod"
prefixes = ["fd00:200::/48"]
[[ipam.pools]]
name = "svc"
kind = "service"
prefixes = ["fd00:300::/112"]
[[services]]
name = "web"
vip = %q
port = 80
communities = ["65001:7"]
backends = ["fd00:100::1"]
[[services]]
name = "idle"
vip = %q
port = 80
backends = ["fd00:100::2"]
`, c.pods, c.vips, serving, idle)
		cfg, err := config.Parse("advertise.toml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		b := &bgpComponent{vips: []netip.Addr{netip.MustParseAddr(serving)}, hosts: []netip.Addr{netip.MustParseAddr(vm)}}
		var got []string
		for _, r := range b.advertised(cfg) {
			s := r.Prefix.String()
			if len(r.Communities) > 0 {
				s += fmt.Sprintf(" %v", r.Communities)
			}
			got = append(got, s)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("pod-prefixes = %v, service-vips = %v: announces %s, want %s", c.pods, c.vips,
				strings.Join(got, ", "), strings.Join(c.want, ", "))
		}
	}
}
