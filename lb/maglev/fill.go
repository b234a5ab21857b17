package maglev

import (
	"math/bits"
)

// taker is one backend with weight > 0 while the table is being filled.
// Takers are kept in key order; a taker's position in that order is its
// rank, which breaks ties between turns.
type taker struct {
	pos    uint32 // next slot of its preference list to try
	skip   uint32 // stride of its preference list
	weight uint32
	quota  uint32 // slots it takes in all
	index  int32  // its index in the input, the value written to the table
	inv    uint32 // skip⁻¹ mod size once the tail needs it, else 0
}

// filler is the table being filled and which of its slots are taken: a
// byte per slot up to byteSlots slots, a bit per slot above. The search
// for a free slot reads those, which stay in a nearer cache than the
// table: the bytes while they fit the first-level cache (a bit costs a
// shift and a mask more per probe; with bytes a build of 12,809 slots
// took 0.88-0.93× the CPU in BenchmarkBuilder), the bits above (at
// 65,537 slots bytes alone took 1.04×).
//
// Probing a preference list costs about size/free probes per turn, so
// the last few free slots cost most of a build (half the probes of a
// table of 12,809 slots go to its last 128). Once no more than tailFree
// slots are free, a turn instead goes over the list of free slots and
// takes the one nearest on the taker's preference list: slot q is
// (q−pos)·skip⁻¹ mod size steps after pos. Every slot before it on the
// list is taken, so it is the slot probing would reach: the table is the
// same, at a cost of free multiplications instead of size/free probes.
type filler struct {
	table []int32
	bytes []byte   // 1: taken; nil when bits are used
	bits  []uint64 // bit set: taken
	free  int      // slots not yet taken
	tail  int      // free count at which the list of free slots takes over
	list  []uint32 // the free slots, once free ≤ tail
	mod   modulus
}

// reset makes f ready to fill table, keeping its scratch.
func (f *filler) reset(table []int32) {
	if len(table) <= byteSlots {
		f.bytes = grow(f.bytes, len(table))
	} else {
		f.bits = grow(f.bits, (len(table)+63)/64)
		f.bytes = nil
	}
	size := uint32(len(table))
	f.table, f.free, f.tail, f.list, f.mod = table, len(table), tailFree(size), f.list[:0], newModulus(size)
	if f.free <= f.tail {
		f.listFree()
	}
}

// tailFree is the number of free slots below which scanning them beats
// probing: between √size/2 and √size, where the size/free probes of a
// turn cost about as much as the free slots scanned (measured with
// BenchmarkBuilder: 2√size and more scan too much).
func tailFree(size uint32) int {
	return 1 << ((bits.Len32(size) - 1) / 2)
}

// take gives t the first free slot of its preference list. There must be
// one: the preference list visits every slot.
func (f *filler) take(t *taker) {
	if f.free <= f.tail {
		f.takeListed(t)
		return
	}
	size, p := uint32(len(f.table)), t.pos
	if taken := f.bytes; taken != nil {
		for taken[p] != 0 {
			if p += t.skip; p >= size {
				p -= size
			}
		}
		taken[p] = 1
	} else {
		taken := f.bits
		for taken[p/64]&(1<<(p%64)) != 0 {
			if p += t.skip; p >= size {
				p -= size
			}
		}
		taken[p/64] |= 1 << (p % 64)
	}
	f.table[p] = t.index
	if p += t.skip; p >= size {
		p -= size
	}
	t.pos = p
	if f.free--; f.free == f.tail {
		f.listFree()
	}
}

// listFree collects the free slots.
func (f *filler) listFree() {
	if f.bytes != nil {
		for q, t := range f.bytes {
			if t == 0 {
				f.list = append(f.list, uint32(q))
			}
		}
		return
	}
	size := len(f.table)
	for w, word := range f.bits {
		for free := ^word; free != 0; free &= free - 1 {
			if q := w*64 + bits.TrailingZeros64(free); q < size {
				f.list = append(f.list, uint32(q))
			}
		}
	}
}

// byteSlots is the largest table whose taken slots are kept a byte each
// (32 KiB, within a first-level data cache).
const byteSlots = 1 << 15

// grow returns s with length n, cleared, reusing its storage if it can.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// takeListed gives t the free slot fewest steps ahead on its preference
// list.
func (f *filler) takeListed(t *taker) {
	size := f.mod.m
	if t.inv == 0 {
		t.inv = inverse(t.skip, size)
	}
	best, steps := 0, uint64(size)
	md, inv, base := f.mod, uint64(t.inv), uint64(size-t.pos)
	for i, q := range f.list {
		// q−pos+size < 2·size: reduce's bound holds.
		if s := md.reduce((uint64(q) + base) * inv); s < steps {
			best, steps = i, s
		}
	}
	q := f.list[best]
	last := len(f.list) - 1
	f.list[best] = f.list[last]
	f.list = f.list[:last]
	f.free--
	f.table[q] = t.index
	if q += t.skip; q >= size {
		q -= size
	}
	t.pos = q
}

// modulus reduces 64-bit numbers modulo m by Barrett's method: one
// multiplication instead of a division.
type modulus struct {
	m     uint32
	recip uint64 // ⌊(2⁶⁴−1)/m⌋
}

func newModulus(m uint32) modulus { return modulus{m: m, recip: ^uint64(0) / uint64(m)} }

// reduce returns x mod m. The estimate ⌊x·recip/2⁶⁴⌋ of x/m is short by
// at most 2, so two conditional subtractions finish it.
func (md modulus) reduce(x uint64) uint64 {
	q, _ := bits.Mul64(x, md.recip)
	r := x - q*uint64(md.m)
	if r >= uint64(md.m) {
		r -= uint64(md.m)
	}
	if r >= uint64(md.m) {
		r -= uint64(md.m)
	}
	return r
}

// inverse returns a⁻¹ mod m for a in [1, m−1] and m prime (extended
// Euclid).
func inverse(a, m uint32) uint32 {
	t, nt := int64(0), int64(1)
	r, nr := int64(m), int64(a)
	for nr != 0 {
		q := r / nr
		t, nt = nt, t-q*nt
		r, nr = nr, r-q*nr
	}
	if t < 0 {
		t += int64(m)
	}
	return uint32(t)
}
