package ipam

import (
	"encoding/binary"
	"math/big"
	"net/netip"
)

// rfc2526Reserved is the number of reserved subnet anycast addresses at the
// top of every IPv6 /64 (RFC 2526).
const rfc2526Reserved = 128

// reservedLow is the lowest interface identifier of the reserved block.
const reservedLow = ^uint64(0) - rfc2526Reserved + 1

// excluded reports whether Allocate must skip a in p: the first address
// (IPv4 network, IPv6 Subnet-Router anycast), the IPv4 broadcast address
// (prefixes up to /30), and in IPv6 prefixes of /64 or shorter the
// Subnet-Router anycast and the RFC 2526 reserved anycast addresses of
// every /64.
func excluded(p netip.Prefix, a netip.Addr) bool {
	if a.Is4() {
		return p.Bits() <= 30 && (a == p.Addr() || a == lastAddr(p))
	}
	if a == p.Addr() {
		return true
	}
	if p.Bits() > 64 {
		return false
	}
	lo := low64(a)
	return lo == 0 || lo >= reservedLow
}

// next returns the address after a in p that may be free, jumping over the
// reserved top of an IPv6 /64; ok is false past the end of p.
func next(p netip.Prefix, a netip.Addr) (netip.Addr, bool) {
	if a.Is6() && p.Bits() <= 64 && low64(a) >= reservedLow {
		b := a.As16()
		hi := binary.BigEndian.Uint64(b[:8]) + 1
		binary.BigEndian.PutUint64(b[:8], hi)
		binary.BigEndian.PutUint64(b[8:], 0)
		n := netip.AddrFrom16(b)
		return n, hi != 0 && p.Contains(n)
	}
	n := a.Next()
	return n, n.IsValid() && p.Contains(n)
}

func low64(a netip.Addr) uint64 {
	b := a.As16()
	return binary.BigEndian.Uint64(b[8:])
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		b := p.Addr().As4()
		v := binary.BigEndian.Uint32(b[:]) | uint32(uint64(1)<<(32-p.Bits())-1)
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// capacity is the number of addresses of p that Allocate may hand out.
func capacity(p netip.Prefix) *big.Int {
	host := p.Addr().BitLen() - p.Bits()
	n := new(big.Int).Lsh(big.NewInt(1), uint(host))
	switch {
	case p.Addr().Is4() && p.Bits() <= 30:
		n.Sub(n, big.NewInt(2))
	case p.Addr().Is4():
	case p.Bits() > 64:
		n.Sub(n, big.NewInt(1))
	default: // 2^(64-bits) /64s, each losing its first and top 128
		per := new(big.Int).Lsh(big.NewInt(1), uint(64-p.Bits()))
		n.Sub(n, per.Mul(per, big.NewInt(1+rfc2526Reserved)))
	}
	return n
}
