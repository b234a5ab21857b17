package bpf

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Settings are the pipeline's settings (struct pipeline_settings) in Go
// terms: the outer source addresses and the knobs of encapsulation.
type Settings struct {
	// Src6 is the outer IPv6 source: the address, and the bits after the
	// prefix length (at most the last 32) vary with the flow hash. Invalid
	// means unset: IPv6-outer packets are dropped (DROP_NO_SOURCE).
	Src6 netip.Prefix
	// Src4 likewise for IPv4-in-IPv4.
	Src4 netip.Prefix
	// HashSeed seeds the flow hash; equal on every LB node.
	HashSeed uint32
	// MTU, if not 0, caps the outer IP packet length below the FIB MTU.
	MTU uint32
	// DisablePTB turns off generated ICMP too big / frag needed.
	DisablePTB bool
	// NexthopTTL is how long a CPU reuses a backend's FIB result,
	// rounded up to kernel ticks (jiffies); 0 means 25 ticks (25 ms at
	// HZ=1000, 100 ms at HZ=250).
	NexthopTTL time.Duration
	// FloodThreshold is the rate of new flows (SYNs and conntrack misses)
	// per second on one CPU above which the excess is counted as a flood
	// (LB_STAT_CT_FLOOD), and SYNs skip emptying their tuple's conntrack
	// entries on other CPUs (LB_STAT_CT_SWEPT) and misses the search of
	// them (LB_STAT_CT_HIT_ELSEWHERE); 0 turns the accounting off.
	FloodThreshold uint32
	// ConntrackIdle is how long an established conntrack entry must have
	// been idle before a new flow may replace it, rounded up to kernel
	// ticks; 0 means DefaultConntrackIdle.
	ConntrackIdle time.Duration
}

// DefaultConntrackIdle is Settings.ConntrackIdle's default.
const DefaultConntrackIdle = 60 * time.Second

func hostMask32(prefixBits, addrBits int) uint32 {
	host := addrBits - prefixBits
	switch {
	case host <= 0:
		return 0
	case host >= 32:
		return 0xffffffff
	default:
		return 1<<host - 1
	}
}

// jiffy returns the kernel tick (1/HZ): the resolution of the coarse
// clocks is exactly one tick.
func jiffy() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		return 0, fmt.Errorf("kernel tick: %w", err)
	}
	d := time.Duration(ts.Nano())
	if d <= 0 || d > time.Second {
		return 0, fmt.Errorf("kernel tick: implausible coarse clock resolution %s", d)
	}
	return d, nil
}

// beU32 returns the uint32 whose little-endian memory holds v in network order.
func beU32(v uint32) uint32 { return bits.ReverseBytes32(v) }

// value encodes s in the C layout.
func (s Settings) value() (DatapathPipelineSettings, error) {
	var v DatapathPipelineSettings
	if s.Src6.IsValid() {
		if !s.Src6.Addr().Is6() || s.Src6.Addr().Is4In6() {
			return v, fmt.Errorf("settings: src6 %s is not IPv6", s.Src6)
		}
		v.Src6 = s.Src6.Addr().As16()
		v.Src6Mask = beU32(hostMask32(s.Src6.Bits(), 128))
		v.Flags |= uint32(DatapathSettingsFlagsSETTINGS_F_SRC6)
	}
	if s.Src4.IsValid() {
		if !s.Src4.Addr().Is4() {
			return v, fmt.Errorf("settings: src4 %s is not IPv4", s.Src4)
		}
		a := s.Src4.Addr().As4()
		v.Src4 = binary.LittleEndian.Uint32(a[:])
		v.Src4Mask = beU32(hostMask32(s.Src4.Bits(), 32))
		v.Flags |= uint32(DatapathSettingsFlagsSETTINGS_F_SRC4)
	}
	if s.DisablePTB {
		v.Flags |= uint32(DatapathSettingsFlagsSETTINGS_F_NO_PTB)
	}
	v.HashSeed = s.HashSeed
	v.Mtu = s.MTU
	if s.NexthopTTL < 0 || s.NexthopTTL > time.Hour {
		return v, fmt.Errorf("settings: next-hop cache lifetime %s out of range", s.NexthopTTL)
	}
	if s.ConntrackIdle < 0 || s.ConntrackIdle > 24*time.Hour {
		return v, fmt.Errorf("settings: conntrack idle time %s out of range", s.ConntrackIdle)
	}
	tick, err := jiffy()
	if err != nil {
		return v, fmt.Errorf("settings: %w", err)
	}
	ticks := func(d time.Duration) uint32 { return uint32((d + tick - 1) / tick) }
	if s.NexthopTTL > 0 {
		v.NexthopTtl = ticks(s.NexthopTTL)
	}
	idle := s.ConntrackIdle
	if idle == 0 {
		idle = DefaultConntrackIdle
	}
	v.CtIdle = ticks(idle)
	v.FloodRate = s.FloodThreshold
	v.FloodWindow = ticks(time.Second)
	return v, nil
}

// OuterSource returns the outer source address the datapath uses for a
// flow hash under s (for tests and tracing).
func (s Settings) OuterSource(hash uint64, ipv4 bool) netip.Addr {
	hb := uint32(hash >> 32) // in memory order, like the C code
	if ipv4 {
		a := s.Src4.Addr().As4()
		base := binary.LittleEndian.Uint32(a[:])
		m := beU32(hostMask32(s.Src4.Bits(), 32))
		binary.LittleEndian.PutUint32(a[:], base&^m|hb&m)
		return netip.AddrFrom4(a)
	}
	a := s.Src6.Addr().As16()
	base := binary.LittleEndian.Uint32(a[12:])
	m := beU32(hostMask32(s.Src6.Bits(), 128))
	binary.LittleEndian.PutUint32(a[12:], base&^m|hb&m)
	return netip.AddrFrom16(a)
}
