package maglev

import (
	"fmt"
	"slices"
)

// MaxSize is the largest table size Build accepts (2²⁴; the largest prime
// below it is 16,777,213).
const MaxSize = 1 << 24

// Backend is one backend of a service as the table sees it.
type Backend struct {
	// Key is the backend's stable identity, for example its address as
	// text. Its preference list is a function of Key and the table size
	// alone, so it does not depend on the backend's position in the list
	// or on the other backends. Keys must be non-empty and unique.
	Key string
	// Weight is the backend's relative share of the slots; 0 gives it none
	// (drained).
	Weight uint32
}

// Build returns a lookup table of size slots, each holding the index in
// backends of the backend that owns it, or -1 in every slot when no
// backend has a weight above 0. size must be prime and at most MaxSize.
//
// It is Builder.Build with a fresh Builder and a new table.
func Build(backends []Backend, size uint32) ([]int32, error) {
	var b Builder
	return b.Build(nil, backends, size)
}

// Builder builds tables, keeping its scratch memory from one build to the
// next. The zero value is ready to use. A Builder must not be used by two
// goroutines at once.
type Builder struct {
	order  []int32 // input indices in key order
	takers []taker
	rank   []int32 // scratch for apportion
	sched  schedule
	fill   filler
}

// Build is like the function Build, but writes the table into dst's
// storage when cap(dst) ≥ size (so the result may alias dst) and allocates
// nothing once its scratch has grown to the largest input seen.
func (b *Builder) Build(dst []int32, backends []Backend, size uint32) ([]int32, error) {
	if err := checkSize(size); err != nil {
		return nil, fmt.Errorf("maglev build: %w", err)
	}
	order, err := sortKeys(b.order, backends)
	b.order = order
	if err != nil {
		return nil, fmt.Errorf("maglev build: %w", err)
	}

	table := slices.Grow(dst[:0], int(size))[:size]
	ts := b.takers[:0]
	for _, idx := range order {
		if w := backends[idx].Weight; w > 0 {
			offset, skip := permutation(backends[idx].Key, size)
			ts = append(ts, taker{pos: offset, skip: skip, weight: w, index: idx})
		}
	}
	b.takers = ts
	if len(ts) == 0 {
		for i := range table {
			table[i] = -1
		}
		return table, nil
	}
	b.rank = apportion(ts, size, b.rank)
	b.fill.reset(table)
	b.sched.fair(&b.fill, ts)
	b.fill.table = nil // the caller's
	return table, nil
}
