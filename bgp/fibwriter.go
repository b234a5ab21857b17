package bgp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// routeWriter sends route changes to the kernel in batches: up to
// writerBatch RTM_NEWROUTE/RTM_DELROUTE messages in one sendmsg. One
// message and one acknowledgement per route in one syscall each
// (vishvananda/netlink's RouteReplace) made a FIB pass of 100,000 routes
// take tens of seconds; the kernel's work per route is the same either
// way. Only the last message of a batch asks for an acknowledgement: the
// kernel handles a batch in order within the sendmsg and answers every
// message it refuses with an error, so once the last one is acknowledged,
// a message without an error was applied (an acknowledgement per route
// cost the kernel an allocation and us a copy, about a tenth of a bulk
// load's CPU). A routeWriter is not safe for concurrent use.
type routeWriter struct {
	fd    int
	table uint32
	proto uint8
	seq   uint32
	buf   []byte
	last  int // where the last message of buf starts
	ops   []routeOp
	rbuf  []byte
	done  []writeResult // sent since the last take
	nhs   []nexthop     // the next hops of the route dump is at
}

// writerBatch is how many route messages go in one sendmsg; writerBytes
// bounds the batch's size (should the kernel refuse all of a batch, the
// errors, 36 bytes each, fit the receive buffer with room to spare).
const (
	writerBatch = 512
	writerBytes = 128 << 10
)

// routeOp is one queued change.
type routeOp struct {
	prefix netip.Prefix
	del    bool
	metric uint32 // 0: routeMetric
	nhs    []nexthop
	want   []nexthop // the caller's, for the result
	seq    uint32
	err    error
}

func newRouteWriter(table int, proto uint8) (*routeWriter, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Errors carry only the header of the failed message back.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	return &routeWriter{fd: fd, table: uint32(table), proto: proto, rbuf: make([]byte, 256<<10)}, nil
}

func (w *routeWriter) close() { unix.Close(w.fd) }

// replace queues installing p with next hops nhs (gateway and, for
// link-local or resolved ones, interface), replacing what is there; want
// is the route as the caller knows it, handed back with the result.
func (w *routeWriter) replace(p netip.Prefix, want, nhs []nexthop) error {
	return w.queue(routeOp{prefix: p, want: want, nhs: nhs})
}

// del queues deleting our route for p.
func (w *routeWriter) del(p netip.Prefix) error {
	return w.queue(routeOp{prefix: p, del: true})
}

func (w *routeWriter) queue(op routeOp) error {
	w.seq++
	op.seq = w.seq
	w.ops = append(w.ops, op)
	w.appendMsg(op)
	if len(w.ops) >= writerBatch || len(w.buf) >= writerBytes {
		return w.send()
	}
	return nil
}

// flush sends what is queued; it returns an error if the kernel could not
// be talked to. take has each change's outcome.
func (w *routeWriter) flush() error { return w.send() }

// writeResult is the outcome of one change.
type writeResult struct {
	prefix netip.Prefix
	del    bool
	nhs    []nexthop
	want   []nexthop
	err    error
}

// take returns the outcomes of the changes sent since the last call,
// valid until the next change is queued.
func (w *routeWriter) take() []writeResult {
	out := w.done
	w.done = w.done[:0]
	return out
}

func (w *routeWriter) send() error {
	if len(w.ops) == 0 {
		return nil
	}
	ops := w.ops
	acked := false
	defer func() {
		for _, op := range ops {
			err := op.err
			if !acked && err == nil {
				err = errors.New("no acknowledgement from the kernel")
			}
			w.done = append(w.done, writeResult{prefix: op.prefix, del: op.del, nhs: op.nhs, want: op.want, err: err})
		}
		w.ops, w.buf = w.ops[:0], w.buf[:0]
	}()
	// The last message asks for the acknowledgement that ends the batch.
	flags := binary.NativeEndian.Uint16(w.buf[w.last+6:])
	binary.NativeEndian.PutUint16(w.buf[w.last+6:], flags|unix.NLM_F_ACK)
	if err := unix.Sendto(w.fd, w.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		for i := range ops {
			ops[i].err = err
		}
		return fmt.Errorf("netlink send: %w", err)
	}
	first, last := ops[0].seq, ops[len(ops)-1].seq
	for !acked {
		n, _, err := unix.Recvfrom(w.fd, w.rbuf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("netlink receive: %w", err)
		}
		b := w.rbuf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			typ := binary.NativeEndian.Uint16(b[4:6])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				break
			}
			if typ == unix.NLMSG_ERROR && l >= unix.SizeofNlMsghdr+4+unix.SizeofNlMsghdr {
				errno := int32(binary.NativeEndian.Uint32(b[16:20]))
				seq := binary.NativeEndian.Uint32(b[20+8 : 20+12])
				if i := int(seq - first); seq >= first && i < len(ops) {
					if errno != 0 {
						ops[i].err = unix.Errno(-errno)
					}
					acked = acked || seq == last
				}
			}
			b = b[nlmAlign(l):]
		}
	}
	return nil
}

func nlmAlign(n int) int { return (n + 3) &^ 3 }

// appendMsg serialises op into w.buf.
func (w *routeWriter) appendMsg(op routeOp) {
	start := len(w.buf)
	w.last = start
	typ, flags := uint16(unix.RTM_NEWROUTE), uint16(unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	if op.del {
		typ, flags = unix.RTM_DELROUTE, unix.NLM_F_REQUEST
	}
	w.buf = binary.NativeEndian.AppendUint32(w.buf, 0) // length, set below
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, flags)
	w.buf = binary.NativeEndian.AppendUint32(w.buf, op.seq)
	w.buf = binary.NativeEndian.AppendUint32(w.buf, 0)

	fam := uint8(unix.AF_INET6)
	if op.prefix.Addr().Is4() {
		fam = unix.AF_INET
	}
	rtTable := uint8(unix.RT_TABLE_UNSPEC)
	if w.table < 256 {
		rtTable = uint8(w.table)
	}
	scope, rtype := uint8(unix.RT_SCOPE_UNIVERSE), uint8(unix.RTN_UNICAST)
	if op.del {
		scope, rtype = unix.RT_SCOPE_NOWHERE, 0
	}
	w.buf = append(w.buf, fam, uint8(op.prefix.Bits()), 0, 0, rtTable, w.proto, scope, rtype, 0, 0, 0, 0)

	w.attr(unix.RTA_DST, op.prefix.Addr().AsSlice())
	w.attrU32(unix.RTA_TABLE, w.table)
	metric := op.metric
	if metric == 0 {
		metric = routeMetric
	}
	w.attrU32(unix.RTA_PRIORITY, metric)
	if !op.del {
		switch {
		case len(op.nhs) == 1:
			w.gateway(op.prefix, op.nhs[0].addr)
			if op.nhs[0].ifindex != 0 {
				w.attrU32(unix.RTA_OIF, uint32(op.nhs[0].ifindex))
			}
		case len(op.nhs) > 1:
			w.multipath(op.prefix, op.nhs)
		}
	}
	binary.NativeEndian.PutUint32(w.buf[start:], uint32(len(w.buf)-start))
}

// gateway appends the next hop: RTA_GATEWAY of the route's family, or
// RTA_VIA for an IPv6 gateway of an IPv4 route (RFC 8950 routes).
func (w *routeWriter) gateway(p netip.Prefix, gw netip.Addr) {
	if p.Addr().Is4() && gw.Is6() {
		a := gw.As16()
		via := append(binary.NativeEndian.AppendUint16(nil, unix.AF_INET6), a[:]...)
		w.attr(unix.RTA_VIA, via)
		return
	}
	w.attr(unix.RTA_GATEWAY, gw.AsSlice())
}

// multipath appends RTA_MULTIPATH: one rtnexthop per next hop, each with
// its gateway nested.
func (w *routeWriter) multipath(p netip.Prefix, nhs []nexthop) {
	start := len(w.buf)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, 0)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, unix.RTA_MULTIPATH)
	for _, nh := range nhs {
		rtnh := len(w.buf)
		w.buf = binary.NativeEndian.AppendUint16(w.buf, 0) // rtnh_len
		w.buf = append(w.buf, 0, 0)                        // flags, hops (weight 1)
		w.buf = binary.NativeEndian.AppendUint32(w.buf, uint32(nh.ifindex))
		w.gateway(p, nh.addr)
		binary.NativeEndian.PutUint16(w.buf[rtnh:], uint16(len(w.buf)-rtnh))
	}
	binary.NativeEndian.PutUint16(w.buf[start:], uint16(len(w.buf)-start))
}

func (w *routeWriter) attr(typ uint16, data []byte) {
	l := 4 + len(data)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, uint16(l))
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ)
	w.buf = append(w.buf, data...)
	for range nlmAlign(l) - l {
		w.buf = append(w.buf, 0)
	}
}

func (w *routeWriter) attrU32(typ uint16, v uint32) {
	w.buf = binary.NativeEndian.AppendUint16(w.buf, 8)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ)
	w.buf = binary.NativeEndian.AppendUint32(w.buf, v)
}
