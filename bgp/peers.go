package bgp

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/aird-net/aird/internal/config"
)

// families is a set of address families (unicast only).
type families uint8

const (
	famIPv4 families = 1 << iota
	famIPv6
)

func (f families) has(x families) bool { return f&x != 0 }

func (f families) String() string {
	var s []string
	if f.has(famIPv6) {
		s = append(s, "ipv6")
	}
	if f.has(famIPv4) {
		s = append(s, "ipv4")
	}
	return strings.Join(s, ",")
}

// familyOf returns the family of an address or prefix address.
func familyOf(a netip.Addr) families {
	if a.Unmap().Is4() {
		return famIPv4
	}
	return famIPv6
}

// session is everything about a peer that GoBGP negotiates in the OPEN or
// uses for the transport: a change to any of it resets that session (the
// peer is deleted and added again). It is comparable with ==.
type session struct {
	// address is the peer's address; for an unnumbered peer the
	// link-local address discovered on iface (with iface as zone), or
	// invalid while none is known: such a peer is not in GoBGP.
	address         netip.Addr
	iface           string // unnumbered: the interface
	peerAS          uint32 // 0: "external" (any AS)
	localAS         uint32
	external        bool // configured as "external"
	password        string
	multihop        int
	ttlSecurity     bool
	passive         bool
	families        families
	holdTime        uint64 // seconds
	keepalive       uint64 // seconds
	connectRetry    uint64 // seconds
	gracefulRestart bool
	restartTime     uint16 // seconds
	bfd             bfdConfig
}

// linkLocal reports a session over IPv6 link-local addresses: unnumbered,
// or a configured fe80::x%iface.
func (s session) linkLocal() bool {
	return s.iface != "" || s.address.IsLinkLocalUnicast()
}

// bindInterface is the interface a link-local session is bound to.
func (s session) bindInterface() string {
	if s.iface != "" {
		return s.iface
	}
	if s.address.IsLinkLocalUnicast() {
		return s.address.Zone()
	}
	return ""
}

// peer is one configured neighbour as the speaker uses it.
type peer struct {
	// key names the peer for as long as its configuration names it: the
	// address, or "interface:IFACE" for an unnumbered peer (whose
	// address comes and goes). Policies and the tracker use it.
	key     string
	name    string // config name, the address or the interface
	path    string // "bgp.peers[i]" for messages
	session session
	cfg     config.Peer
}

// resolved reports whether the peer has an address, i.e. is (to be) a
// GoBGP neighbour.
func (p peer) resolved() bool { return p.session.address.IsValid() }

// buildPeers turns the [[bgp.peers]] tables into peers, reading password
// files. Unnumbered peers have no address yet (see resolvePeers).
func buildPeers(c *config.BGP) ([]peer, error) {
	var errs []error
	out := make([]peer, 0, len(c.Peers))
	for i, p := range c.Peers {
		path := fmt.Sprintf("bgp.peers[%d]", i)
		if p.Name != "" {
			path += fmt.Sprintf(" (%s)", p.Name)
		}
		pe, err := buildPeer(c, p, path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, pe)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func buildPeer(c *config.BGP, p config.Peer, path string) (peer, error) {
	switch {
	case p.Interface != "" && p.Address.IsValid():
		return peer{}, fmt.Errorf("%s: a peer has either address or interface, not both", path)
	case p.Interface == "" && !p.Address.IsValid():
		return peer{}, fmt.Errorf("%s: no address or interface", path)
	case p.Address.IsLinkLocalUnicast() && p.Address.Zone() == "":
		return peer{}, fmt.Errorf("%s: link-local address %s needs its interface as zone (fe80::1%%eth0)", path, p.Address)
	case p.Address.Zone() != "" && !p.Address.IsLinkLocalUnicast():
		return peer{}, fmt.Errorf("%s: only link-local addresses take a zone: %s", path, p.Address)
	case p.Passive && c.ListenPort == 0:
		return peer{}, fmt.Errorf("%s: passive peer with listen-port 0: the session could never come up", path)
	case (p.Interface != "" || p.Address.IsLinkLocalUnicast()) && p.Multihop > 0:
		return peer{}, fmt.Errorf("%s: a link-local (unnumbered) peer is directly connected: multihop must be 0", path)
	}
	bfd, err := newBFDConfig(p.BFD)
	if err != nil {
		return peer{}, fmt.Errorf("%s: %w", path, err)
	}
	s := session{
		address:     p.Address.Unmap(),
		iface:       p.Interface,
		bfd:         bfd,
		localAS:     uint32(c.ASN),
		multihop:    p.Multihop,
		ttlSecurity: p.TTLSecurity,
		passive:     p.Passive,
	}
	switch p.ASN.Kind {
	case "internal":
		s.peerAS = uint32(c.ASN)
	case "external":
		s.external = true
	default:
		s.peerAS = uint32(p.ASN.Number)
	}
	for _, f := range p.Families {
		switch f {
		case "ipv4":
			s.families |= famIPv4
		case "ipv6":
			s.families |= famIPv6
		default:
			return peer{}, fmt.Errorf("%s: unknown family %q", path, f)
		}
	}
	if s.families == 0 {
		return peer{}, fmt.Errorf("%s: no address family", path)
	}
	hold, keep := p.HoldTime, p.KeepaliveTime
	if hold == 0 {
		hold = c.HoldTime
	}
	if keep == 0 {
		keep = c.KeepaliveTime
	}
	if hold == 0 {
		return peer{}, fmt.Errorf("%s: hold-time 0 (no keepalives) is not supported by the embedded speaker", path)
	}
	s.holdTime = seconds(hold.D())
	s.keepalive = seconds(keep.D())
	s.connectRetry = seconds(c.ConnectRetry.D())
	if c.GracefulRestart.Enabled {
		s.gracefulRestart = true
		s.restartTime = uint16(min(seconds(c.GracefulRestart.RestartTime.D()), 4095))
	}
	pw, err := password(p)
	if err != nil {
		return peer{}, fmt.Errorf("%s: %w", path, err)
	}
	s.password = pw
	key := s.address.String()
	if s.iface != "" {
		key = "interface:" + s.iface
	}
	name := p.Name
	switch {
	case name != "":
	case s.iface != "":
		name = s.iface
	default:
		name = s.address.String()
	}
	return peer{key: key, name: name, path: path, session: s, cfg: p}, nil
}

// seconds rounds d up to whole seconds (GoBGP's timers are in seconds).
func seconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(math.Ceil(d.Seconds()))
}

// maxPasswordLen is the TCP MD5 key limit (TCP_MD5SIG_MAXKEYLEN).
const maxPasswordLen = 80

// password returns the peer's TCP MD5 key: password, or the contents of
// password-file (trailing newline removed) read now, so a reload picks up
// a rotated key. The file must not be readable by group or others.
func password(p config.Peer) (string, error) {
	if p.PasswordFile == "" {
		return p.Password, nil
	}
	f, err := os.Open(p.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("password-file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("password-file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("password-file %s is not a regular file", p.PasswordFile)
	}
	if perm := st.Mode().Perm(); perm&0o044 != 0 {
		return "", fmt.Errorf("password-file %s is readable by group or others (mode %04o): chmod 600 it", p.PasswordFile, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordLen+3))
	if err != nil {
		return "", fmt.Errorf("password-file %s: %w", p.PasswordFile, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	switch {
	case pw == "":
		return "", fmt.Errorf("password-file %s is empty", p.PasswordFile)
	case len(pw) > maxPasswordLen:
		return "", fmt.Errorf("password-file %s: TCP MD5 keys are at most %d bytes", p.PasswordFile, maxPasswordLen)
	}
	return pw, nil
}
