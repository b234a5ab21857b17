package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// reservedASN explains why an AS number cannot be used, or returns "".
func reservedASN(a ASN) string {
	switch {
	case a == 0:
		return "AS 0 is reserved (RFC 7607)"
	case a == 23456:
		return "AS 23456 is AS_TRANS, reserved for 2-byte compatibility (RFC 6793)"
	case a >= 64496 && a <= 64511, a >= 65536 && a <= 65551:
		return fmt.Sprintf("AS %d is reserved for documentation (RFC 5398)", a)
	case a == 65535, a == 4294967295:
		return fmt.Sprintf("AS %d is reserved (RFC 7300)", a)
	case a >= 65552 && a <= 131071:
		return fmt.Sprintf("AS %d is in the reserved block 65552-131071 (IANA)", a)
	}
	return ""
}

func (v *validator) asn(path string, a ASN) {
	if why := reservedASN(a); why != "" {
		v.errf(path, "invalid AS number: %s", why)
	}
}

func (v *validator) bgp() {
	b := v.c.BGP
	if b == nil {
		return
	}
	if !v.r.written("bgp.asn") {
		v.errf("bgp.asn", "asn is required: this node's AS number")
	} else {
		v.asn("bgp.asn", b.ASN)
	}
	if !b.RouterID.IsValid() {
		if v.r.failed("node.router-id") || v.r.failed("node.underlay") {
			// Already reported: the router-id could not be derived.
		} else {
			v.errf("bgp.router-id", "no router-id: set bgp.router-id or node.router-id (an IPv4-formatted identifier, required even on IPv6-only nodes)")
		}
	} else if !v.r.written("bgp.router-id") && b.RouterID == v.c.Node.RouterID {
		// Inherited from node.router-id, which is checked (and reported) there.
	} else if !b.RouterID.Is4() || b.RouterID.IsUnspecified() {
		v.errf("bgp.router-id", "router-id %s must be a non-zero IPv4-formatted identifier", b.RouterID)
	}
	v.intIn("bgp.listen-port", int64(b.ListenPort), 0, 65535)
	v.timers("bgp", b.HoldTime, b.KeepaliveTime)
	v.duration("bgp.connect-retry", b.ConnectRetry, time.Second, time.Hour)
	if b.GRPCSocket != "" {
		v.absPath("bgp.grpc-socket", b.GRPCSocket, "socket path")
	}
	v.communities("bgp.communities", b.Communities)
	v.largeCommunities("bgp.large-communities", b.LargeCommunities)
	// The restart time is a 12-bit field in the capability (RFC 4724).
	v.duration("bgp.graceful-restart.restart-time", b.GracefulRestart.RestartTime, time.Second, 4095*time.Second)
	v.duration("bgp.drain.wait", b.Drain.Wait, 0, time.Hour)
	v.intIn("bgp.drain.prepend", int64(b.Drain.Prepend), 0, 10)
	v.peers(b)
}

// timers checks a hold time and keepalive pair: hold 3s..65535s (0, no
// keepalives, is legal BGP but the embedded speaker does not support it),
// keepalive below hold.
func (v *validator) timers(prefix string, hold, keepalive Duration) {
	if hold == 0 {
		v.errf(prefix+".hold-time", "hold-time 0 (no keepalives) is not supported by aird's BGP speaker: use 3s to 65535s")
	} else {
		v.duration(prefix+".hold-time", hold, 3*time.Second, 65535*time.Second)
	}
	v.duration(prefix+".keepalive-time", keepalive, 0, 21845*time.Second)
	if hold > 0 && keepalive >= hold {
		v.errf(prefix+".keepalive-time", "keepalive-time %s must be shorter than hold-time %s (a third of it is usual)", keepalive, hold)
	}
}

func (v *validator) peers(b *BGP) {
	byAddr, byIface, byName := map[string]int{}, map[string]int{}, map[string]int{}
	for i := range b.Peers {
		p := &b.Peers[i]
		path := indexPath("bgp.peers", i)
		v.peer(path, b, p)
		key, kind, seen := p.Address.String(), "address", byAddr
		if p.Interface != "" {
			key, kind, seen = p.Interface, "interface", byIface
		}
		if j, dup := seen[key]; dup && (p.Address.IsValid() || p.Interface != "") {
			v.errf(path+"."+kind, "duplicate peer: %s %s is already bgp.peers[%d]", kind, key, j)
		} else {
			seen[key] = i
		}
		if p.Name != "" {
			if j, dup := byName[p.Name]; dup {
				v.errf(path+".name", "duplicate peer name %q (also bgp.peers[%d])", p.Name, j)
			}
			byName[p.Name] = i
		}
	}
}

func (v *validator) peer(path string, b *BGP, p *Peer) {
	switch {
	case p.Address.IsValid() && p.Interface != "":
		v.errf(path, "a peer has either address or interface (unnumbered), not both")
	case p.Address.IsValid():
		if p.Address.IsUnspecified() || p.Address.IsMulticast() || p.Address.Is4In6() {
			v.errf(path+".address", "peer address %s is not a unicast address", p.Address)
		}
		if p.Address.IsLinkLocalUnicast() && p.Address.Zone() == "" {
			v.errf(path+".address", "link-local peer address %s needs a zone (fe80::1%%eth0), or use interface = \"eth0\"", p.Address)
		}
		if !p.Address.IsLinkLocalUnicast() && p.Address.Zone() != "" {
			v.errf(path+".address", "only a link-local address takes a zone: %s", p.Address)
		}
		if p.Address.IsLinkLocalUnicast() && p.Multihop > 0 {
			v.errf(path+".multihop", "a link-local peer is directly connected: multihop must be 0")
		}
	case p.Interface != "":
		v.ifname(path+".interface", p.Interface)
		if p.Multihop > 0 {
			v.errf(path+".multihop", "an interface (unnumbered) peer is directly connected: multihop must be 0")
		}
	default:
		v.errf(path, "a peer needs address or interface")
	}
	if !v.r.written(path + ".asn") {
		v.errf(path+".asn", "peer AS is required: a number, \"external\" or \"internal\"")
	} else if p.ASN.Kind == "" {
		v.asn(path+".asn", p.ASN.Number)
	}
	if p.Password != "" && p.PasswordFile != "" {
		v.errf(path+".password-file", "set password or password-file, not both")
	}
	if p.PasswordFile != "" {
		v.absPath(path+".password-file", p.PasswordFile, "password file")
	}
	if len(p.Password) > 80 {
		v.errf(path+".password", "TCP MD5 keys are at most 80 bytes")
	}
	if p.Passive && b.ListenPort == 0 {
		v.errf(path+".passive", "a passive peer needs bgp.listen-port: with listen-port 0 no session could ever come up")
	}
	v.intIn(path+".multihop", int64(p.Multihop), 0, 255)
	if p.TTLSecurity && p.Multihop > 0 {
		v.errf(path+".ttl-security", "ttl-security (GTSM) and multihop exclude each other")
	}
	v.families(path+".families", p.Families)
	hold, keep := p.HoldTime, p.KeepaliveTime
	if hold == 0 {
		hold = b.HoldTime
	}
	if keep == 0 {
		keep = b.KeepaliveTime
	}
	if p.HoldTime != 0 || p.KeepaliveTime != 0 {
		v.timers(path, hold, keep)
	}
	v.communities(path+".communities", p.Communities)
	v.largeCommunities(path+".large-communities", p.LargeCommunities)
	if p.MED < 0 || p.MED > 4294967295 {
		v.errf(path+".med", "MED %d is out of range 0..4294967295", p.MED)
	}
	v.intIn(path+".prepend", int64(p.Prepend), 0, 10)
	v.intIn(path+".import.max-prefixes", int64(p.Import.MaxPrefixes), 1, 10_000_000)
	v.bfd(path+".bfd", p.BFD)
}

func (v *validator) families(path string, fams []string) {
	if len(fams) == 0 {
		v.errf(path, "at least one address family is required (\"ipv6\", \"ipv4\")")
	}
	seen := map[string]bool{}
	for i, f := range fams {
		v.oneOf(indexPath(path, i), f, "ipv6", "ipv4")
		if seen[f] {
			v.errf(indexPath(path, i), "family %q is listed twice", f)
		}
		seen[f] = true
	}
}

func (v *validator) bfd(path string, b BFD) {
	v.duration(path+".min-rx", b.MinRx, 10*time.Millisecond, 10*time.Second)
	v.duration(path+".min-tx", b.MinTx, 10*time.Millisecond, 10*time.Second)
	v.intIn(path+".multiplier", int64(b.Multiplier), 1, 255)
}

var wellKnownCommunities = map[string]bool{
	"no-export": true, "no-advertise": true, "no-export-subconfed": true,
	"graceful-shutdown": true, "blackhole": true, "no-peer": true,
}

// communities checks RFC 1997 communities: "ASN:VALUE" (16 bits each) or a
// well-known name.
func (v *validator) communities(path string, cs []string) {
	for i, c := range cs {
		if wellKnownCommunities[c] {
			continue
		}
		if !numericParts(c, 2, 0xffff) {
			v.errf(indexPath(path, i), "invalid community %q: use \"65000:100\" (two 16-bit numbers) or a well-known name", c)
		}
	}
}

// largeCommunities checks RFC 8092 large communities: three 32-bit numbers.
func (v *validator) largeCommunities(path string, cs []string) {
	for i, c := range cs {
		if !numericParts(c, 3, 0xffffffff) {
			v.errf(indexPath(path, i), "invalid large community %q: use \"4200000000:1:2\" (three 32-bit numbers)", c)
		}
	}
}

func numericParts(s string, n int, maximum uint64) bool {
	parts := strings.Split(s, ":")
	if len(parts) != n {
		return false
	}
	for _, p := range parts {
		x, err := strconv.ParseUint(p, 10, 64)
		if err != nil || x > maximum {
			return false
		}
	}
	return true
}
