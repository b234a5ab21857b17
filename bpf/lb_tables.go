package bpf

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cilium/ebpf"
)

// TableBatch is how many Maglev tables SetTables swaps in with one batch
// update of the outer map. Each batch waits for one RCU grace period
// (instead of one per table); a batch also bounds how many replaced tables
// the kernel holds at once until that grace period ends.
const TableBatch = 64

// SetTables installs several Maglev tables (vip_id -> slot -> backend id)
// like SetTable, TableBatch at a time. A restart re-installing thousands of
// tables would otherwise wait thousands of grace periods. On error, tables
// of earlier batches are installed and the rest are not.
func (l *LB) SetTables(tables map[uint32][]uint32) error {
	ids := slices.Sorted(maps.Keys(tables))
	for chunk := range slices.Chunk(ids, TableBatch) {
		if err := l.setTableBatch(chunk, tables); err != nil {
			return err
		}
	}
	return nil
}

func (l *LB) setTableBatch(ids []uint32, tables map[uint32][]uint32) error {
	inners := make([]*ebpf.Map, 0, len(ids))
	defer func() {
		for _, m := range inners {
			m.Close() // the outer map keeps installed tables alive
		}
	}()
	fds := make([]uint32, len(ids))
	for i, id := range ids {
		m, err := l.newTable(id, tables[id])
		if err != nil {
			return err
		}
		inners = append(inners, m)
		fds[i] = uint32(m.FD())
	}
	if _, err := l.m.Maglev.BatchUpdate(ids, fds, nil); err != nil {
		return fmt.Errorf("install maglev tables of vips %d..%d: %w", ids[0], ids[len(ids)-1], err)
	}
	return nil
}

// newTable creates and fills the inner map of one Maglev table.
func (l *LB) newTable(vipID uint32, table []uint32) (*ebpf.Map, error) {
	if vipID >= MaxVIPs {
		return nil, fmt.Errorf("vip id %d out of range 0..%d", vipID, MaxVIPs-1)
	}
	if uint32(len(table)) != l.tableSize {
		return nil, fmt.Errorf("maglev table for vip %d has %d slots, want %d", vipID, len(table), l.tableSize)
	}
	inner, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "maglev_table", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: l.tableSize,
	})
	if err != nil {
		return nil, fmt.Errorf("create maglev table: %w", err)
	}
	keys := make([]uint32, len(table))
	for i := range keys {
		keys[i] = uint32(i)
	}
	if _, err := inner.BatchUpdate(keys, table, nil); err != nil {
		return nil, errors.Join(fmt.Errorf("fill maglev table of vip %d: %w", vipID, err), inner.Close())
	}
	return inner, nil
}
