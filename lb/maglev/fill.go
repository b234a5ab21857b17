package maglev

// taker is one backend with weight > 0 while the table is being filled.
// Takers are kept in key order; a taker's position in that order is its
// rank, which breaks ties between turns.
type taker struct {
	pos    uint32 // next slot of its preference list to try
	skip   uint32 // stride of its preference list
	weight uint32
	quota  uint32 // slots it takes in all
	index  int32  // its index in the input, the value written to the table
}

// filler is the table being filled and a bitmap of its taken slots. The
// search for a free slot reads the bitmap, 1/32 of the table's size, which
// stays in a nearer cache than the table.
type filler struct {
	table []int32
	taken []uint64
}

// newFiller returns a filler for table, reusing bits for the bitmap.
func newFiller(table []int32, bits []uint64) filler {
	n := (len(table) + 63) / 64
	if cap(bits) < n {
		bits = make([]uint64, n)
	}
	bits = bits[:n]
	clear(bits)
	return filler{table: table, taken: bits}
}

// take gives t the first free slot of its preference list. There must be
// one: the preference list visits every slot.
func (f filler) take(t *taker) {
	size := uint32(len(f.table))
	p := t.pos
	for f.taken[p/64]&(1<<(p%64)) != 0 {
		if p += t.skip; p >= size {
			p -= size
		}
	}
	f.taken[p/64] |= 1 << (p % 64)
	f.table[p] = t.index
	if p += t.skip; p >= size {
		p -= size
	}
	t.pos = p
}
