package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// oldStatsMaps are the counter maps of older versions - one per-CPU array
// per kind, indexed by its enum - that bpf.MapStats (one per-CPU value
// holding every kind) replaces.
var oldStatsMaps = []string{bpf.MapFamilyStatsV1, bpf.MapEventStatsV1, bpf.MapDropStatsV1}

// migrateStats adds the counts of an older version's pinned counter maps
// (oldStatsMaps under p) into stats, this version's pipeline counters,
// CPU by CPU, so that what the metrics report never goes backwards across
// the upgrade. It runs on a fresh stats before the new program is
// attached, so nothing else writes it; the older program counts into its
// own maps until the new one replaces it, and what it counts after this
// read is not carried over. It returns the names of the maps it carried
// over; a map that is not pinned is skipped, one that cannot be read or
// has another layout is an error (the others are still carried over).
func migrateStats(p pins, stats *ebpf.Map) ([]string, error) {
	per, err := bpf.PipelineCountersPerCPU(stats)
	if err != nil {
		return nil, err
	}
	var carried []string
	var errs []error
	for _, name := range oldStatsMaps {
		m, err := ebpf.LoadPinnedMap(p.mapPath(name), &ebpf.LoadPinOptions{ReadOnly: true})
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = addOldStats(per, name, m)
			m.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		carried = append(carried, name)
	}
	if len(carried) > 0 {
		if err := stats.Put(uint32(0), per); err != nil {
			return nil, errors.Join(append(errs, fmt.Errorf("write %s: %w", bpf.MapStats, err))...)
		}
	}
	return carried, errors.Join(errs...)
}

// addOldStats adds every entry of name, an older counter map, into per
// (the new value of each CPU); per is changed only when all of it was read.
func addOldStats(per []bpf.DatapathPipelineCounters, name string, m *ebpf.Map) error {
	staged := slices.Clone(per)
	var err error
	switch name {
	case bpf.MapFamilyStatsV1:
		err = readOldStats(m, len(per), len(per[0].Family), func(cpu int, k uint32, v bpf.DatapathFamilyCounter) {
			staged[cpu].Family[k].Packets += v.Packets
			staged[cpu].Family[k].Bytes += v.Bytes
		})
	case bpf.MapEventStatsV1:
		err = readOldStats(m, len(per), len(per[0].Events), func(cpu int, k uint32, v uint64) { staged[cpu].Events[k] += v })
	case bpf.MapDropStatsV1:
		err = readOldStats(m, len(per), len(per[0].Drops), func(cpu int, k uint32, v uint64) { staged[cpu].Drops[k] += v })
	default:
		err = errors.New("not a counter map of an older version")
	}
	if err != nil {
		return err
	}
	copy(per, staged)
	return nil
}

// readOldStats calls add for every CPU's value of every entry of m, a
// per-CPU array of V: entries beyond room (the new value's slots for the
// kind) are an error, as their counts would be lost.
func readOldStats[V any](m *ebpf.Map, cpus, room int, add func(cpu int, k uint32, v V)) error {
	var zero V
	size := uint32(binary.Size(zero))
	if m.Type() != ebpf.PerCPUArray || m.KeySize() != 4 || m.ValueSize() != size {
		return fmt.Errorf("is %s key=%d value=%d, want a per-CPU array of %d-byte values",
			m.Type(), m.KeySize(), m.ValueSize(), size)
	}
	if m.MaxEntries() > uint32(room) {
		return fmt.Errorf("has %d entries, the new counters room for %d", m.MaxEntries(), room)
	}
	var vals []V
	for k := range m.MaxEntries() {
		if err := m.Lookup(k, &vals); err != nil {
			return fmt.Errorf("read %d: %w", k, err)
		}
		if len(vals) != cpus {
			return fmt.Errorf("entry %d has %d CPUs' values, want %d", k, len(vals), cpus)
		}
		for cpu, v := range vals {
			add(cpu, k, v)
		}
	}
	return nil
}

// migrateOldStats carries an older version's counter maps over into stats
// (migrateStats) when there are any, and returns the older maps not
// carried over when that failed; a failure is logged, not fatal: the
// counters of what was not carried over then start again from zero.
func (d *Datapath) migrateOldStats(stats *ebpf.Map) (failed []string) {
	carried, err := migrateStats(d.pins, stats)
	if err != nil {
		d.log.Warn("older counters not (all) carried over: those start again from zero", "into", bpf.MapStats,
			"carried", carried, "error", err)
		for _, name := range oldStatsMaps {
			if !slices.Contains(carried, name) {
				failed = append(failed, name)
			}
		}
	}
	if len(carried) > 0 {
		d.log.Info("carried the older counters over", "from", carried, "into", bpf.MapStats)
	}
	return failed
}
