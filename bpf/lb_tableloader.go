package bpf

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// unmapBatch is how many table mappings a TableLoader keeps before it
// removes them.
const unmapBatch = 256

// TableLoader loads Maglev tables as LB.NewTable does, but removes the
// memory mappings it writes them through unmapBatch at a time, adjacent
// mappings in one munmap: every munmap of a multi-threaded process
// flushes the other CPUs' TLBs by interrupt, which in this project's
// virtual machines cost more than the rest of loading a table (2,000
// tables of 26 KB on two threads: 231-239 µs of CPU a table unmapped one by
// one, 133-149 µs in runs of adjacent mappings). A mapping holds its map
// until removed. Safe for use by several goroutines; Close removes what
// is left and reports any mapping that could not be removed.
type TableLoader struct {
	mu      sync.Mutex
	pending []mapping
	errs    []error
}

// mapping is one table's memory mapping, not yet removed.
type mapping struct {
	addr unsafe.Pointer
	size uintptr
}

// NewTable loads t into a new inner map (LB.NewTable).
func (tl *TableLoader) NewTable(t MaglevTable) (*Table, error) {
	return newTable(t, tl.write)
}

// write copies data to the start of m's values through a mapping kept for
// a later munmap.
func (tl *TableLoader) write(m *ebpf.Map, data []byte) error {
	size := pageRound(len(data))
	p, err := unix.MmapPtr(m.FD(), 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map table memory: %w", err)
	}
	copy(unsafe.Slice((*byte)(p), size), data)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.pending = append(tl.pending, mapping{p, uintptr(size)})
	if len(tl.pending) >= unmapBatch {
		tl.unmap()
	}
	return nil
}

// Close removes the mappings still kept.
func (tl *TableLoader) Close() error {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.unmap()
	err := errors.Join(tl.errs...)
	tl.errs = nil
	return err
}

// unmap removes the kept mappings, each run of adjacent ones with one
// munmap, and keeps the errors for Close. The caller holds mu.
func (tl *TableLoader) unmap() {
	ms := tl.pending
	slices.SortFunc(ms, func(a, b mapping) int { return cmp.Compare(uintptr(a.addr), uintptr(b.addr)) })
	for i := 0; i < len(ms); {
		start, size := ms[i].addr, ms[i].size
		for i++; i < len(ms) && uintptr(ms[i].addr) == uintptr(start)+size; i++ {
			size += ms[i].size
		}
		if err := unix.MunmapPtr(start, size); err != nil {
			tl.errs = append(tl.errs, fmt.Errorf("unmap table memory: %w", err))
		}
	}
	tl.pending = ms[:0]
}
