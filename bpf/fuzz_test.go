package bpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// FuzzXDP runs arbitrary frames through the real program with the test
// services programmed (programLB) in a namespace with a deterministic FIB.
// The verdict must always be DROP, PASS, TX or REDIRECT, and a frame passed
// to the kernel that is not addressed to a VIP or decap address must leave
// the program byte for byte as it came in.
//
// CI: AIRD_TEST_PRIVILEGED=1 go test ./bpf/ -run '^$' -fuzz '^FuzzXDP$' -fuzztime 60s
func FuzzXDP(f *testing.F) {
	for _, p := range packets(f) {
		if len(p) >= 14 {
			f.Add(p)
		}
	}
	for _, p := range fuzzSeeds(f) {
		f.Add(p)
	}
	e := newLBEnv(f)
	programLB(f, e)
	ours := map[netip.Addr]bool{}
	for _, a := range []string{vip6, vip4, vip4b} {
		ours[netip.MustParseAddr(a)] = true
	}
	ours[nodeAddr6], ours[nodeAddr4] = true, true

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 || len(in) > 4000 {
			return // BPF_PROG_TEST_RUN refuses runts; XDP frames fit a page
		}
		verdict, out := e.run(t, in, true)
		switch verdict {
		case xdpDrop, xdpPass, xdpTx, xdpRedirect:
		default:
			t.Fatalf("verdict %d for %x", verdict, in)
		}
		if verdict == xdpPass && !ours[destination(in)] && !bytes.Equal(out, in) {
			t.Fatalf("passed frame not for us was modified:\n in  %x\n out %x", in, out)
		}
	})
}

// destination returns the IP destination of an Ethernet frame (after at
// most two VLAN tags), or the zero Addr.
func destination(b []byte) netip.Addr {
	if len(b) < 14 {
		return netip.Addr{}
	}
	typ := binary.BigEndian.Uint16(b[12:])
	off := 14
	for i := 0; i < 2 && (typ == 0x8100 || typ == 0x88a8); i++ {
		if len(b) < off+4 {
			return netip.Addr{}
		}
		typ = binary.BigEndian.Uint16(b[off+2:])
		off += 4
	}
	switch {
	case typ == 0x0800 && len(b) >= off+20:
		return netip.AddrFrom4([4]byte(b[off+16 : off+20]))
	case typ == 0x86dd && len(b) >= off+40:
		return netip.AddrFrom16([16]byte(b[off+24 : off+40])).Unmap()
	}
	return netip.Addr{}
}

// fuzzSeeds are frames that reach deep into the stages.
func fuzzSeeds(t testing.TB) [][]byte {
	l3 := ip6(client6, vip6, layers.IPProtocolUDP, 64)
	frag := ip6(client6, vip6, layers.IPProtocolIPv6Fragment, 64)
	echo := ip6(client6, vip6, layers.IPProtocolICMPv6, 64)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	_ = ic.SetNetworkLayerForChecksum(echo)
	tunnel := ip6("2001:db8:5::99", nodeAddr6.String(), layers.IPProtocolIPv6, 64)
	ipip := ip4("192.0.2.77", nodeAddr4.String(), layers.IPProtocolIPv4, 64)
	return [][]byte{
		fromTor(tcp6(t, client6, 40000, 443, syn, 64, 20)),
		fromTor(tcp6(t, client6, 40000, 443, ack, 1, 20)),
		fromTor(tcp6(t, client6, 40000, 443, ack, 64, 1440)),
		fromTor(tcp4(t, vip4, 50000, 80, syn, 64, 10)),
		fromTor(tcp4(t, vip4b, 50000, 80, ack, 64, 1460)),
		fromTor(ipPacket(t, l3, udpL(l3, 5353, 53), gopacket.Payload("q"))),
		fromTor(ipPacket(t, frag, &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: 9}, gopacket.Payload("later"))),
		fromTor(ipPacket(t, echo, ic, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1}, gopacket.Payload("ping"))),
		fromTor(ptb6(t, 40000, 64)),
		fromTor(withExtHeaders(t, tcp6(t, client6, 40020, 443, syn, 64, 8), layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination)),
		fromTor(ipPacket(t, tunnel, gopacket.Payload(tcp6(t, client6, 1, 443, ack, 63, 0)))),
		fromTor(ipPacket(t, ipip, gopacket.Payload(tcp4(t, vip4b, 50000, 80, ack, 63, 20)))),
		fromTor(tcp6(t, "2001:db8:dd::1", 40000, 22, syn, 64, 0)),
	}
}
