package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// oracle checks what the XDP program made of one frame against its
// contract (xdp.c, decap.h, lb.h, encap.h, icmp.h, router.h), for any
// input. A changed frame must be exactly one of:
//
//   - an encapsulated VIP packet (TX to the gateway, or PASS with the
//     received MACs when the next hop is not resolved): a well-formed outer
//     header from the configured source prefix to a backend, and as inner
//     the input's whole IP packet (its header's length equal to its bytes,
//     Ethernet padding removed) with only the hop limit / TTL decremented;
//   - an echo reply or a too-big message (TX) back to the input's source:
//     lengths and checksums valid, everything else as the contract says;
//   - a packet delivered to a local endpoint (REDIRECT): the input with
//     the endpoint's MACs and the hop limit / TTL decremented;
//   - a decapsulated tunnel packet (PASS, or REDIRECT to a DSR endpoint):
//     the Ethernet header and the inner packet as carried, which must lie
//     whole within the outer one, to a destination of the node.
//
// An unchanged frame may only be passed; dropped frames are not looked at.
type oracle struct {
	vips, nodeAddrs, localAddrs map[netip.Addr]bool
	backends                    map[netip.Addr]bool
	src6, src4                  netip.Prefix
	tunnelSources               []netip.Prefix
	endpoints                   map[netip.Addr]oracleEndpoint // by each of its addresses
	txMACs                      []byte                        // destination and source of a frame sent back out of the uplink
}

type oracleEndpoint struct {
	mac, hostMAC net.HardwareAddr
	vips         map[netip.Addr]bool
}

// newOracle describes e's configuration (programLB's services and
// backends, the node's addresses) and the endpoints eps.
func newOracle(e *lbEnv, eps []Endpoint) *oracle {
	o := &oracle{vips: map[netip.Addr]bool{}, nodeAddrs: map[netip.Addr]bool{nodeAddr6: true, nodeAddr4: true},
		localAddrs: map[netip.Addr]bool{}, backends: map[netip.Addr]bool{}, src6: e.settings.Src6, src4: e.settings.Src4,
		tunnelSources: testTunnelSources, endpoints: map[netip.Addr]oracleEndpoint{},
		txMACs: append(append([]byte(nil), gwMAC...), uplinkMAC...)}
	for _, a := range []string{vip6, vip4, vip4b} {
		o.vips[netip.MustParseAddr(a)] = true
	}
	for _, a := range testLocalAddrs {
		o.localAddrs[a] = true
	}
	for _, a := range e.backends {
		o.backends[a] = true
	}
	for _, ep := range eps {
		oe := oracleEndpoint{mac: ep.MAC, hostMAC: ep.HostMAC, vips: map[netip.Addr]bool{}}
		for _, v := range ep.VIPs {
			oe.vips[v] = true
		}
		for _, a := range ep.Addrs {
			o.endpoints[a] = oe
		}
	}
	return o
}

// ipHdr is what the oracle reads of an IP header.
type ipHdr struct {
	v        int // 4 or 6
	hlen     int // fixed header (IPv6) or header with options (IPv4)
	claimed  int // the length the header gives the packet
	src, dst netip.Addr
	proto    uint8 // IPv4 protocol, IPv6 next header
}

func parseIP(b []byte) (ipHdr, error) {
	if len(b) < 1 {
		return ipHdr{}, fmt.Errorf("no IP header")
	}
	switch b[0] >> 4 {
	case 6:
		if len(b) < 40 {
			return ipHdr{}, fmt.Errorf("IPv6 header cut at %d bytes", len(b))
		}
		return ipHdr{v: 6, hlen: 40, claimed: 40 + int(binary.BigEndian.Uint16(b[4:])),
			src: netip.AddrFrom16([16]byte(b[8:24])), dst: netip.AddrFrom16([16]byte(b[24:40])), proto: b[6]}, nil
	case 4:
		if len(b) < 20 {
			return ipHdr{}, fmt.Errorf("IPv4 header cut at %d bytes", len(b))
		}
		h := ipHdr{v: 4, hlen: int(b[0]&0x0f) * 4, claimed: int(binary.BigEndian.Uint16(b[2:])),
			src: netip.AddrFrom4([4]byte(b[12:16])), dst: netip.AddrFrom4([4]byte(b[16:20])), proto: b[9]}
		if h.hlen < 20 || h.hlen > len(b) {
			return h, fmt.Errorf("IPv4 header length %d of %d bytes", h.hlen, len(b))
		}
		return h, nil
	}
	return ipHdr{}, fmt.Errorf("IP version %d", b[0]>>4)
}

// whole parses b and fails unless it holds the whole packet its header
// claims, and that is at least its header.
func whole(b []byte) (ipHdr, error) {
	h, err := parseIP(b)
	if err != nil {
		return h, err
	}
	if h.claimed > len(b) || h.claimed < h.hlen {
		return h, fmt.Errorf("IPv%d packet claims %d bytes, carries %d (header %d): not whole", h.v, h.claimed, len(b), h.hlen)
	}
	return h, nil
}

// csumSum is the one's complement sum of b's 16-bit words (RFC 1071),
// folded, with 0xffff taken as 0 (both are zero in one's complement).
func csumSum(parts ...[]byte) uint16 {
	var s uint32
	for _, b := range parts {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	if s == 0xffff {
		s = 0
	}
	return uint16(s)
}

// pseudo6 is the IPv6 pseudo-header of an upper-layer packet of n bytes.
func pseudo6(ip []byte, n int, next uint8) []byte {
	p := append([]byte(nil), ip[8:40]...)
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(p, uint32(n)), uint32(next))
}

// equalMasked compares got with want except at the offsets in skip.
func equalMasked(got, want []byte, skip ...int) bool {
	if len(got) != len(want) {
		return false
	}
	g, w := bytes.Clone(got), bytes.Clone(want)
	for _, i := range skip {
		g[i], w[i] = 0, 0
	}
	return bytes.Equal(g, w)
}

func (o *oracle) check(in []byte, verdict uint32, out []byte) error {
	switch verdict {
	case xdpDrop:
		return nil
	case xdpPass, xdpTx, xdpRedirect:
	default:
		return fmt.Errorf("verdict %d", verdict)
	}
	if bytes.Equal(in, out) {
		if verdict != xdpPass {
			return fmt.Errorf("verdict %d for the unchanged frame", verdict)
		}
		return nil
	}
	if len(in) < 14 || len(out) < 14 {
		return fmt.Errorf("frame of %d bytes changed to %d bytes", len(in), len(out))
	}
	if t := binary.BigEndian.Uint16(in[12:]); t != 0x86dd && t != 0x0800 {
		return fmt.Errorf("a frame of type %#04x (not untagged IP) was changed", t)
	}
	if oh, err := parseIP(out[14:]); err == nil && o.backends[oh.dst] && (oh.proto == 41 || oh.proto == 4) {
		return o.checkEncap(in, verdict, out)
	}
	switch {
	case verdict == xdpTx:
		return o.checkICMP(in, out)
	case verdict == xdpRedirect && len(out) == len(in):
		return o.checkDelivered(in, out)
	}
	return o.checkDecap(in, verdict, out)
}

// forwarded is what the input's IP packet must look like once forwarded:
// exactly its claimed bytes, hop limit / TTL decremented; for IPv4 the
// offset of the header checksum, which the caller checks by sum.
func forwarded(ip []byte, h ipHdr) ([]byte, error) {
	p := bytes.Clone(ip[:h.claimed])
	hop := 7
	if h.v == 4 {
		hop = 8
	}
	if p[hop] <= 1 {
		return nil, fmt.Errorf("forwarded with hop limit %d", p[hop])
	}
	p[hop]--
	return p, nil
}

// sameHeaderSum fails unless the IPv4 headers a and b sum to the same (the
// checksum was updated for what changed, valid or not as it came in).
func sameHeaderSum(a, b []byte, hlen int) error {
	if sa, sb := csumSum(a[:hlen]), csumSum(b[:hlen]); sa != sb {
		return fmt.Errorf("IPv4 header checksum not updated: header sums %#04x in, %#04x out", sa, sb)
	}
	return nil
}

func (o *oracle) checkEncap(in []byte, verdict uint32, out []byte) error {
	ip := in[14:]
	h, err := whole(ip)
	if err != nil {
		return fmt.Errorf("encapsulated a packet that is not whole: %w", err)
	}
	if !o.vips[h.dst] {
		return fmt.Errorf("encapsulated a packet to %s, not a VIP", h.dst)
	}
	oip := out[14:]
	oh, _ := parseIP(oip)
	var tc byte
	if h.v == 6 {
		tc = byte(binary.BigEndian.Uint16(ip[0:]) >> 4)
	} else {
		tc = ip[1]
	}
	switch oh.v {
	case 6:
		next := uint8(4)
		if h.v == 6 {
			next = 41
		}
		switch {
		case binary.BigEndian.Uint16(out[12:]) != 0x86dd:
			return fmt.Errorf("outer IPv6 in a frame of type %#04x", binary.BigEndian.Uint16(out[12:]))
		case oh.claimed != len(oip):
			return fmt.Errorf("outer IPv6 claims %d bytes, carries %d", oh.claimed, len(oip))
		case oh.proto != next || oip[7] != 64:
			return fmt.Errorf("outer next header %d hop limit %d, want %d, 64", oh.proto, oip[7], next)
		case byte(binary.BigEndian.Uint16(oip[0:])>>4) != tc:
			return fmt.Errorf("outer traffic class %#02x, inner %#02x", byte(binary.BigEndian.Uint16(oip[0:])>>4), tc)
		case !o.src6.Contains(oh.src):
			return fmt.Errorf("outer source %s outside %s", oh.src, o.src6)
		}
	case 4:
		switch {
		case h.v != 4:
			return fmt.Errorf("IPv%d inner in an IPv4 outer header", h.v)
		case binary.BigEndian.Uint16(out[12:]) != 0x0800:
			return fmt.Errorf("outer IPv4 in a frame of type %#04x", binary.BigEndian.Uint16(out[12:]))
		case oh.hlen != 20 || oh.claimed != len(oip):
			return fmt.Errorf("outer IPv4 header %d bytes, claims %d bytes, carries %d", oh.hlen, oh.claimed, len(oip))
		case oip[8] != 64 || binary.BigEndian.Uint16(oip[6:]) != 0x4000 || oip[1] != tc:
			return fmt.Errorf("outer TTL %d, fragment field %#04x, TOS %#02x (inner %#02x)", oip[8], binary.BigEndian.Uint16(oip[6:]), oip[1], tc)
		case csumSum(oip[:20]) != 0:
			return fmt.Errorf("outer IPv4 header checksum invalid")
		case !o.src4.Contains(oh.src):
			return fmt.Errorf("outer source %s outside %s", oh.src, o.src4)
		}
	}
	switch verdict {
	case xdpTx:
		if !bytes.Equal(out[:12], o.txMACs) {
			return fmt.Errorf("sent back with MACs %x, want the gateway's %x", out[:12], o.txMACs)
		}
	case xdpPass:
		if !bytes.Equal(out[:12], in[:12]) {
			return fmt.Errorf("passed with MACs %x, not the received %x", out[:12], in[:12])
		}
	default:
		return fmt.Errorf("encapsulated packet with verdict %d: no next hop but the gateway in the test network", verdict)
	}
	want, err := forwarded(ip, h)
	if err != nil {
		return err
	}
	inner := oip[oh.hlen:]
	if h.v == 4 {
		if !equalMasked(inner, want, 10, 11) {
			return fmt.Errorf("inner packet differs from the input's:\n got  %x\n want %x", inner, want)
		}
		return sameHeaderSum(ip, inner, h.hlen)
	}
	if !bytes.Equal(inner, want) {
		return fmt.Errorf("inner packet differs from the input's:\n got  %x\n want %x", inner, want)
	}
	return nil
}

// checkICMP checks an echo reply or a generated too-big message.
func (o *oracle) checkICMP(in, out []byte) error {
	ip := in[14:]
	h, err := whole(ip)
	if err != nil {
		return fmt.Errorf("answered a packet that is not whole: %w", err)
	}
	if !o.vips[h.dst] {
		return fmt.Errorf("answered a packet to %s, not a VIP", h.dst)
	}
	if !bytes.Equal(out[:6], in[6:12]) || !bytes.Equal(out[6:12], in[:6]) {
		return fmt.Errorf("answer's MACs %x, not the input's swapped %x", out[:12], in[:12])
	}
	if len(out) == len(in) {
		return checkEcho(in, out, h)
	}
	return checkTooBig(in, out, h)
}

// checkEcho: the request with addresses swapped, hop limit 64, type
// reply, checksums updated; nothing else changed.
func checkEcho(in, out []byte, h ipHdr) error {
	ip, oip := in[14:], out[14:]
	want := bytes.Clone(out[:14])
	want = append(want, ip...)
	w := want[14:]
	if h.v == 6 {
		if h.proto != 58 || h.claimed < 48 || ip[40] != 128 {
			return fmt.Errorf("echo reply to next header %d type %d", h.proto, ip[40])
		}
		copy(w[8:24], ip[24:40])
		copy(w[24:40], ip[8:24])
		w[7], w[40] = 64, 129
		if !equalMasked(out, want, 14+42, 14+43) {
			return fmt.Errorf("echo reply differs:\n got  %x\n want %x", out, want)
		}
		n := h.claimed - 40
		if si, so := csumSum(pseudo6(ip, n, 58), ip[40:h.claimed]), csumSum(pseudo6(oip, n, 58), oip[40:h.claimed]); si != so {
			return fmt.Errorf("echo reply's ICMPv6 checksum not updated: sums %#04x in, %#04x out", si, so)
		}
		return nil
	}
	if h.proto != 1 || h.claimed < h.hlen+8 || ip[h.hlen] != 8 {
		return fmt.Errorf("echo reply to protocol %d, %d bytes", h.proto, h.claimed)
	}
	copy(w[12:16], ip[16:20])
	copy(w[16:20], ip[12:16])
	w[8], w[h.hlen] = 64, 0
	if !equalMasked(out, want, 14+10, 14+11, 14+h.hlen+2, 14+h.hlen+3) {
		return fmt.Errorf("echo reply differs:\n got  %x\n want %x", out, want)
	}
	if err := sameHeaderSum(ip, oip, h.hlen); err != nil {
		return err
	}
	if si, so := csumSum(ip[h.hlen:h.claimed]), csumSum(oip[h.hlen:h.claimed]); si != so {
		return fmt.Errorf("echo reply's ICMP checksum not updated: sums %#04x in, %#04x out", si, so)
	}
	return nil
}

// ptbQuote is PTB_QUOTE (icmp.h): bytes of the packet a too-big quotes.
const ptbQuote = 512

// checkTooBig: from the VIP to the client, quoting the packet's first
// ptbQuote bytes, lengths and checksums valid, an MTU below its length.
func checkTooBig(in, out []byte, h ipHdr) error {
	ip, oip := in[14:], out[14:]
	oh, err := whole(oip)
	if err != nil {
		return fmt.Errorf("too-big message: %w", err)
	}
	if h.claimed < ptbQuote {
		return fmt.Errorf("too-big message for a packet of %d bytes", h.claimed)
	}
	if oh.v != h.v || oh.src != h.dst || oh.dst != h.src {
		return fmt.Errorf("too-big message from %s to %s, want %s to %s", oh.src, oh.dst, h.dst, h.src)
	}
	var ic []byte
	var mtu int
	if h.v == 6 {
		ic = oip[40:]
		if binary.BigEndian.Uint16(out[12:]) != 0x86dd || len(oip) != 40+8+ptbQuote || oh.claimed != len(oip) ||
			oh.proto != 58 || oip[7] != 64 || ic[0] != 2 || ic[1] != 0 {
			return fmt.Errorf("malformed ICMPv6 too big: %x", out)
		}
		if s := csumSum(pseudo6(oip, len(ic), 58), ic); s != 0 {
			return fmt.Errorf("ICMPv6 too big checksum invalid (sum %#04x)", s)
		}
		mtu = int(binary.BigEndian.Uint32(ic[4:]))
	} else {
		ic = oip[20:]
		if binary.BigEndian.Uint16(out[12:]) != 0x0800 || oh.hlen != 20 || len(oip) != 20+8+ptbQuote || oh.claimed != len(oip) ||
			oh.proto != 1 || oip[8] != 64 || ic[0] != 3 || ic[1] != 4 || binary.BigEndian.Uint16(ic[4:]) != 0 {
			return fmt.Errorf("malformed ICMP fragmentation needed: %x", out)
		}
		if binary.BigEndian.Uint16(ip[6:])&0x4000 == 0 {
			return fmt.Errorf("fragmentation needed for a packet without DF")
		}
		if csumSum(oip[:20]) != 0 || csumSum(ic) != 0 {
			return fmt.Errorf("fragmentation needed: IP or ICMP checksum invalid")
		}
		mtu = int(binary.BigEndian.Uint16(ic[6:]))
	}
	if mtu == 0 || mtu >= h.claimed {
		return fmt.Errorf("too-big message announces MTU %d for a packet of %d bytes", mtu, h.claimed)
	}
	if !bytes.Equal(ic[8:], ip[:ptbQuote]) {
		return fmt.Errorf("too-big message quotes other bytes than the packet's first %d", ptbQuote)
	}
	return nil
}

// checkDelivered: a packet to a local endpoint, redirected to its link.
func (o *oracle) checkDelivered(in, out []byte) error {
	ip := in[14:]
	h, err := whole(ip)
	if err != nil {
		return fmt.Errorf("delivered a packet that is not whole: %w", err)
	}
	ep, ok := o.endpoints[h.dst]
	if !ok || len(ep.mac) == 0 {
		return fmt.Errorf("redirected a packet to %s, not an endpoint with a known MAC", h.dst)
	}
	if !bytes.Equal(out[:6], ep.mac) || !bytes.Equal(out[6:12], ep.hostMAC) {
		return fmt.Errorf("delivered with MACs %x, want %s %s", out[:12], ep.mac, ep.hostMAC)
	}
	want, err := forwarded(ip, h)
	if err != nil {
		return err
	}
	want = append(append(bytes.Clone(out[:14]), want...), ip[h.claimed:]...)
	var skip []int
	if h.v == 4 {
		skip = []int{24, 25}
	}
	if !bytes.Equal(out[12:14], in[12:14]) || !equalMasked(out, want, skip...) {
		return fmt.Errorf("delivered packet differs from the input's:\n got  %x\n want %x", out, want)
	}
	if h.v == 4 {
		return sameHeaderSum(ip, out[14:], h.hlen)
	}
	return nil
}

// innerOffset walks a tunnel packet's outer header (and IPv6 extension
// headers, as parse.h does) to the inner packet.
func innerOffset(ip []byte, h ipHdr) (int, error) {
	if h.v == 4 {
		if h.proto != 4 && h.proto != 41 {
			return 0, fmt.Errorf("decapsulated IPv4 protocol %d", h.proto)
		}
		return h.hlen, nil
	}
	off, next := 40, h.proto
	for range 6 {
		switch next {
		case 4, 41:
			return off, nil
		case 0, 43, 60:
			if off+2 > len(ip) {
				return 0, fmt.Errorf("extension header cut")
			}
			next, off = ip[off], off+(int(ip[off+1])+1)*8
		case 51:
			if off+2 > len(ip) {
				return 0, fmt.Errorf("extension header cut")
			}
			next, off = ip[off], off+(int(ip[off+1])+2)*4
		default:
			return 0, fmt.Errorf("decapsulated a packet with next header %d", next)
		}
	}
	if next == 4 || next == 41 {
		return off, nil
	}
	return 0, fmt.Errorf("decapsulated a packet with more than 6 extension headers")
}

// checkDecap: a tunnel packet to the node (PASS) or to a DSR endpoint
// (REDIRECT) from a trusted source, its inner packet whole within it.
func (o *oracle) checkDecap(in []byte, verdict uint32, out []byte) error {
	ip := in[14:]
	h, err := whole(ip)
	if err != nil {
		return fmt.Errorf("changed a packet that is not whole: %w", err)
	}
	off, err := innerOffset(ip, h)
	if err != nil {
		return err
	}
	if !prefixesContain(o.tunnelSources, h.src) {
		return fmt.Errorf("decapsulated a packet from %s, not a tunnel source", h.src)
	}
	if off > h.claimed || !bytes.Equal(out[14:], ip[off:]) {
		return fmt.Errorf("changed frame is not the inner packet at %d:\n in  %x\n out %x", off, in, out)
	}
	ih, err := whole(ip[off:h.claimed])
	if err != nil {
		return fmt.Errorf("decapsulated an inner packet not whole within the outer one: %w", err)
	}
	if typ := map[int]uint16{4: 0x0800, 6: 0x86dd}[ih.v]; binary.BigEndian.Uint16(out[12:]) != typ {
		return fmt.Errorf("decapsulated IPv%d in a frame of type %#04x", ih.v, binary.BigEndian.Uint16(out[12:]))
	}
	switch verdict {
	case xdpPass:
		if !o.nodeAddrs[h.dst] {
			return fmt.Errorf("decapsulated a packet to %s, not a node address", h.dst)
		}
		if _, ep := o.endpoints[ih.dst]; !o.localAddrs[ih.dst] && !o.nodeAddrs[ih.dst] && !ep {
			return fmt.Errorf("decapsulated a packet for %s, not the node's", ih.dst)
		}
		if !bytes.Equal(out[:12], in[:12]) {
			return fmt.Errorf("decapsulated with MACs %x, not the received %x", out[:12], in[:12])
		}
	case xdpRedirect:
		ep, ok := o.endpoints[h.dst]
		if !ok || !ep.vips[ih.dst] || len(ep.mac) == 0 {
			return fmt.Errorf("decapsulated and redirected a packet to %s for %s: not a DSR endpoint's VIP", h.dst, ih.dst)
		}
		if !bytes.Equal(out[:6], ep.mac) || !bytes.Equal(out[6:12], ep.hostMAC) {
			return fmt.Errorf("decapsulated with MACs %x, want %s %s", out[:12], ep.mac, ep.hostMAC)
		}
	default:
		return fmt.Errorf("decapsulated with verdict %d", verdict)
	}
	return nil
}

func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}
