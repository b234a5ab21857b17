package lb

import (
	"net/netip"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/config"
)

// entry is one vips entry the programmer writes for a service: the service
// itself, or the fragments-only port-0 entry derived from it.
type entry struct {
	svc   config.Service // Port 0 for a fragments entry; Name is the service's (health)
	flags bpf.DatapathVipFlags
}

// entries returns what Sync programs for services: each service, plus a
// fragments-only port-0 entry for each (VIP, protocol with ports) that has
// no port-0 service of its own.
//
// Fragments of a datagram carry no ports after the first, so the data plane
// looks them up as (VIP, 0, protocol) and hashes them on (src, dst, proto):
// every fragment of a datagram meets one backend. Without such an entry a
// fragment to a port service would be a counted drop. The entry takes the
// backends, health and allow list of the VIP's first service of that
// protocol in the configuration, which is exact when the VIP's services
// of that protocol share their backends (the usual case: one application
// on several ports); VIP_F_FRAGMENTS_ONLY keeps unfragmented packets to
// other ports from matching it.
func entries(services []config.Service) []entry {
	type vp struct {
		addr  netip.Addr
		proto string
	}
	first := map[vp]config.Service{}
	hasPort0 := map[vp]bool{}
	var order []vp
	out := make([]entry, 0, len(services))
	for _, s := range services {
		out = append(out, entry{svc: s})
		k := vp{s.VIP, s.Protocol}
		if s.Port == 0 {
			hasPort0[k] = true
			continue
		}
		if _, ok := first[k]; !ok {
			first[k] = s
			order = append(order, k)
		}
	}
	for _, k := range order {
		if hasPort0[k] {
			continue
		}
		f := first[k]
		f.Port = 0
		out = append(out, entry{svc: f, flags: bpf.DatapathVipFlagsVIP_F_FRAGMENTS_ONLY})
	}
	return out
}
