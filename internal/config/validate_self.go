package config

import (
	"fmt"
	"net/netip"
)

// ownPrefix is an address (a /32 or /128) or prefix that belongs to this
// node, and the key it comes from.
type ownPrefix struct {
	prefix netip.Prefix
	what   string
}

// ownPrefixes lists what is this node's own: its underlay addresses, and
// the outer source prefixes of its encapsulated packets.
func (v *validator) ownPrefixes() []ownPrefix {
	var own []ownPrefix
	for i, a := range v.c.Node.Underlay {
		if a.IsValid() && a.Zone() == "" {
			own = append(own, ownPrefix{netip.PrefixFrom(a, a.BitLen()), fmt.Sprintf("this node's underlay address (node.underlay[%d])", i)})
		}
	}
	for _, e := range []struct {
		key string
		p   netip.Prefix
	}{{"lb.encap-source-prefix", v.c.LB.EncapSourcePrefix}, {"lb.encap-source-prefix4", v.c.LB.EncapSourcePrefix4}} {
		if e.p.IsValid() && e.p == e.p.Masked() {
			own = append(own, ownPrefix{e.p, fmt.Sprintf("inside %s %s, the outer sources of this node's tunnels", e.key, e.p)})
		}
	}
	return own
}

func ownerOf(own []ownPrefix, a netip.Addr) (string, bool) {
	a = a.WithZone("")
	for _, o := range own {
		if o.prefix.Contains(a) {
			return o.what, true
		}
	}
	return "", false
}

// self rejects the node's own addresses where another machine's belong: a
// VIP that is the node's underlay address (announcing it cuts the node
// off), a backend that is the node itself or a VIP (the balancer would
// send flows to itself, or around a loop), a BGP peer that is the node or
// one of its VIPs.
func (v *validator) self() {
	own := v.ownPrefixes()
	vips := map[netip.Addr]int{} // VIP -> the first service with it
	for i, s := range v.c.Services {
		if _, seen := vips[s.VIP]; s.VIP.IsValid() && !seen {
			vips[s.VIP] = i
		}
	}
	for i, s := range v.c.Services {
		path := indexPath("services", i)
		if what, ok := ownerOf(own, s.VIP); ok && s.VIP.IsValid() {
			v.errf(path+".vip", "VIP %s is %s: announced as a VIP it would pull the node's own traffic into the load balancer", s.VIP, what)
		}
		for j, b := range s.Backends {
			if !b.Address.IsValid() {
				continue
			}
			bp := func() string { return indexPath(path+".backends", j) + ".address" } // built for errors only
			if what, ok := ownerOf(own, b.Address); ok {
				v.errf(bp(), "backend %s is %s: the load balancer would send the flows to itself", b.Address, what)
			} else if k, ok := vips[b.Address]; ok && b.Address != s.VIP {
				v.errf(bp(), "backend %s is the VIP of services[%d]: flows would loop through the load balancer", b.Address, k)
			}
		}
	}
	if v.c.BGP == nil || v.included { // the peers are the main file's: checkPeersVIPs
		return
	}
	for i, p := range v.c.BGP.Peers {
		path := indexPath("bgp.peers", i) + ".address"
		if !p.Address.IsValid() {
			continue
		}
		if what, ok := ownerOf(own, p.Address); ok {
			v.errf(path, "peer address %s is %s: a session with itself", p.Address, what)
		} else if k, ok := vips[p.Address.WithZone("")]; ok {
			v.errf(path, "peer address %s is the VIP of services[%d], which this node answers itself", p.Address, k)
		}
	}
}
