package lb

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/aird-net/aird/bpf"
)

// maglevMaxSize bounds the table size (lb/maglev's limit).
const maglevMaxSize = 1 << 24

// Sizing says how big a service's Maglev table is: at least PerBackend
// slots per backend (0: DefaultSlotsPerBackend), at most Limit (0:
// DefaultMaglevTableSize).
type Sizing struct {
	PerBackend uint32
	Limit      uint32
}

// Size returns the Maglev table size of a service with n backends (weight
// 0 included): the smallest prime of at least PerBackend × n rounded up to
// a power of two, or Limit if that is smaller. Rounding keeps the size,
// and with it every flow's slot, while backends come and go between two
// powers of two; only crossing one re-spreads the new flows of the
// service (tracked flows keep their backend). The size depends on n and
// the sizing alone, so every load balancer builds the same table.
func (z Sizing) Size(n int) uint32 {
	per, limit := uint64(z.PerBackend), z.Limit
	if per == 0 {
		per = DefaultSlotsPerBackend
	}
	if limit == 0 {
		limit = DefaultMaglevTableSize
	}
	if n < 1 {
		n = 1
	}
	want := per << bits.Len(uint(n-1))
	if want >= uint64(limit) {
		return limit
	}
	p := uint32(want)
	for !isPrime(p) {
		p++
	}
	return min(p, limit)
}

// TableSize returns the size of a table of n backends with the default
// slots per backend under the cap limit.
func TableSize(n int, limit uint32) uint32 {
	return Sizing{Limit: limit}.Size(n)
}

// isPrime tests n by trial division.
func isPrime(n uint32) bool {
	if n < 4 {
		return n >= 2
	}
	if n%2 == 0 || n%3 == 0 {
		return false
	}
	for d := uint32(5); d*d <= n; d += 6 {
		if n%d == 0 || n%(d+2) == 0 {
			return false
		}
	}
	return true
}

// digest identifies what a table is built from: its size and every
// backend's address, id and weight, in address order. Two services with
// the same digest have identical tables and share one.
type digest [16]byte

// member is one backend as a table sees it.
type member struct {
	addr   netip.Addr
	id     uint32
	weight uint32
}

// sortMembers puts members in the canonical (address) order.
func sortMembers(ms []member) {
	slices.SortFunc(ms, func(a, b member) int { return cmp.Compare(a.addr.Compare(b.addr), 0) })
}

// digestOf returns the digest of a table of size slots over ms (canonical
// order), using *buf as its buffer.
func digestOf(size uint32, ms []member, buf *[]byte) digest {
	// One buffer and one sum: a hash.Hash written 24 bytes at a time
	// costs several times as much, over a million backends at a start.
	b := slices.Grow((*buf)[:0], 4+24*len(ms))
	b = binary.LittleEndian.AppendUint32(b, size)
	for _, m := range ms {
		a := m.addr.As16()
		b = append(b, a[:]...)
		b = binary.LittleEndian.AppendUint32(b, m.id)
		b = binary.LittleEndian.AppendUint32(b, m.weight)
	}
	*buf = b
	sum := sha256.Sum256(b)
	return digest(sum[:len(digest{})])
}

// table is one Maglev table in the kernel, shared by the vip ids whose
// services have its digest (refs counts them). It can be installed for
// another vip id while this process has a handle on it (t) or it is
// pinned; a table adopted from an earlier process without a pin has
// neither.
type table struct {
	key    digest
	t      *bpf.Table // open handle, or nil
	pinned bool       // pinned at Programmer.pinPath(key)
	id     uint64     // the kernel's map id
	usable uint32     // backends with slots
	refs   int
}

// shareable reports whether the table can be installed for more vip ids.
func (t *table) shareable() bool { return t.t != nil || t.pinned }
