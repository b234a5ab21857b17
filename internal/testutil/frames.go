package testutil

import (
	"encoding/binary"
	"net/netip"
)

// FrameDestination returns the IP destination of an Ethernet frame (after
// at most two VLAN tags; IPv4-mapped addresses unmapped), or the zero Addr
// when the frame is too short or not IPv4/IPv6. It reads the fixed header
// fields only, as the XDP program does, so it also works on corrupted
// frames.
func FrameDestination(b []byte) netip.Addr {
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
