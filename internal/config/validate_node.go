package config

import (
	"fmt"
	"net/netip"
	"strings"
)

func (v *validator) node() {
	n := &v.c.Node
	if n.Name == "" || len(n.Name) > 253 || strings.ContainsAny(n.Name, " \t\n/") {
		v.errf("node.name", "node name %q must be 1..253 characters without spaces or '/'", n.Name)
	}
	if n.RouterID.IsValid() && (!n.RouterID.Is4() || n.RouterID.IsUnspecified()) {
		v.errf("node.router-id", "router-id %s must be a non-zero IPv4-formatted 32-bit identifier (for example 10.255.0.1), also on IPv6-only nodes", n.RouterID)
	}
	if len(n.Underlay) == 0 {
		v.errf("node.underlay", "at least one underlay address is required (the next hop peers use to reach this node)")
	}
	seen := map[string]int{}
	for i, a := range n.Underlay {
		p := indexPath("node.underlay", i)
		if !v.unicast(p, a, "underlay address") {
			continue
		}
		if j, dup := seen[family(a)]; dup {
			v.errf(p, "a second %s underlay address (%s); node.underlay[%d] already has one", family(a), a, j)
		}
		seen[family(a)] = i
	}
	names := map[string]bool{}
	for i, u := range n.Uplinks {
		p := indexPath("node.uplinks", i)
		v.ifname(p, u)
		if names[u] {
			v.errf(p, "uplink %q is listed twice", u)
		}
		names[u] = true
	}
}

func (v *validator) datapath() {
	d := &v.c.Datapath
	v.absPath("datapath.pin-path", d.PinPath, "pin path")
	if !strings.HasPrefix(d.PinPath, "/sys/fs/bpf/") {
		v.errf("datapath.pin-path", "pin path %q must be below /sys/fs/bpf/ (bpffs)", d.PinPath)
	}
	v.oneOf("datapath.xdp-mode", d.XDPMode, "auto", "native", "generic")
	v.oneOf("datapath.forwarding", d.Forwarding, "enable", "keep")
	v.tunnelSources(d.TunnelSources)
	v.uplinkOptions(d.Uplink)
}

// uplinkOptions checks [[datapath.uplink]]: each names an uplink of
// node.uplinks, once.
func (v *validator) uplinkOptions(opts []UplinkOptions) {
	listed := make(map[string]bool, len(v.c.Node.Uplinks))
	for _, u := range v.c.Node.Uplinks {
		listed[u] = true
	}
	seen := map[string]int{}
	for i, o := range opts {
		p := indexPath("datapath.uplink", i)
		v.ifname(p+".name", o.Name)
		if j, dup := seen[o.Name]; dup {
			v.errf(p+".name", "uplink %q already has settings (datapath.uplink[%d])", o.Name, j)
		} else if o.Name != "" && !listed[o.Name] {
			v.errf(p+".name", "%q is not one of node.uplinks", o.Name)
		}
		seen[o.Name] = i
		v.oneOf(p+".flow-affinity", o.FlowAffinity, FlowAffinityAuto, FlowAffinityOneCPU, FlowAffinityAnyCPU)
	}
}

// MaxTunnelSources bounds datapath.tunnel-sources (the data plane's map
// holds more, for the on-link prefixes added to them).
const MaxTunnelSources = 1024

func (v *validator) tunnelSources(srcs []TunnelSource) {
	if len(srcs) > MaxTunnelSources {
		v.errf("datapath.tunnel-sources", "%d tunnel sources; at most %d", len(srcs), MaxTunnelSources)
		return
	}
	seen := map[TunnelSource]int{}
	for i, s := range srcs {
		p := indexPath("datapath.tunnel-sources", i)
		if j, dup := seen[s]; dup {
			v.errf(p, "%s is listed twice (also datapath.tunnel-sources[%d])", s.String(), j)
			continue
		}
		seen[s] = i
		switch {
		case s.Keyword == TunnelSourcesNone && len(srcs) > 1:
			v.errf(p, "%q must be the only tunnel source (it accepts no tunnel packet at all)", TunnelSourcesNone)
		case s.Keyword != "":
		case s.Prefix.Addr().Zone() != "":
			v.errf(p, "tunnel source %s must not have a zone", s.Prefix)
		case s.Prefix.Addr().Is4In6():
			hint := "as IPv4"
			if s.Prefix.Bits() >= 96 {
				hint = fmt.Sprintf("as %q", netip.PrefixFrom(s.Prefix.Addr().Unmap(), s.Prefix.Bits()-96))
			}
			v.errf(p, "tunnel source %s is IPv4-mapped: write it %s", s.Prefix, hint)
		case s.Prefix.Addr().IsMulticast():
			v.errf(p, "tunnel source %s is a multicast prefix; tunnel packets come from unicast addresses", s.Prefix)
		}
	}
}

func (v *validator) lb() {
	l := &v.c.LB
	if v.intIn("lb.maglev-table-size", int64(l.MaglevTableSize), 7, 16_777_213) && !isPrime(l.MaglevTableSize) {
		v.errf("lb.maglev-table-size", "%d is not prime (Maglev needs a prime table size, for example 65537 or 655373)", l.MaglevTableSize)
	}
	v.intIn("lb.maglev-slots-per-backend", int64(l.MaglevSlotsPerBackend), 100, 10_000)
	v.intIn("lb.conntrack-size", int64(l.ConntrackSize), 1024, 16_777_216)
	v.intIn("lb.flood-threshold", int64(l.FloodThreshold), 0, 100_000_000)
	v.encapSource("lb.encap-source-prefix", l.EncapSourcePrefix, false)
	v.encapSource("lb.encap-source-prefix4", l.EncapSourcePrefix4, true)
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// local checks the sections about the daemon itself: api, metrics, log.
func (v *validator) local() {
	a := &v.c.API
	v.absPath("api.socket", a.Socket, "socket path")
	if len(a.Socket) > 107 {
		v.errf("api.socket", "socket path is %d bytes long; a unix socket path holds at most 107", len(a.Socket))
	}
	if v.intIn("api.socket-mode", int64(a.SocketMode), 0, 0o777) && a.SocketMode&0o002 != 0 {
		v.errf("api.socket-mode", "%#o is writable by others: every local user could connect to the API; use 0o660 with api.socket-group for the users who may", a.SocketMode)
	}
	if m := &v.c.Metrics; m.Listen != "" {
		v.hostPort("metrics.listen", m.Listen)
		if !strings.HasPrefix(m.Path, "/") {
			v.errf("metrics.path", "path %q must start with '/'", m.Path)
		}
	}
	v.oneOf("log.level", v.c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", v.c.Log.Format, "text", "json")
}
