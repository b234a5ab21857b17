package datapath

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// ctMigrateChunk is how many conntrack sets one batch call reads or writes.
const ctMigrateChunk = 1024

// ctMigration counts what migrateConntrack carried over.
type ctMigration struct {
	flows   int // entries written into the new map
	dropped int // entries left out: their new set had four flows worth more
}

// pinnedHashSeed returns the flow hash seed in the pinned settings map the
// running (older) program reads, if it was adopted: a migrated entry keeps
// the bits of the flow hash its packets' outer headers were built from.
func pinnedHashSeed(settings *ebpf.Map) (uint32, bool) {
	if settings == nil {
		return 0, false
	}
	var st bpf.DatapathPipelineSettings
	if err := settings.Lookup(uint32(0), &st); err != nil {
		return 0, false
	}
	return st.HashSeed, true
}

// migrateConntrack copies the flows of an older version's pinned conntrack
// (bpf.MapConntrackV1, whose sets the flow hash picks) into ct, this
// version's conntrack (sets picked by bpf.ConntrackHash): each entry into
// its new set in the same CPU's partition, with the flow hash bits the
// entry now keeps (seed: the seed the older program hashed with). It runs
// on a fresh ct before the new program is attached; the older program
// keeps its own map until then, so flows it records meanwhile are not
// carried over (their next packet misses and takes the same Maglev table).
// When more flows land in one new set than it has ways, established ones
// are kept before new ones, and the most recently seen first. The caller
// removes the old pin once the new program is attached (removeStalePins);
// the new ct_tags starts all CT_TAG_UNKNOWN, which holds for any content.
func migrateConntrack(old, ct *ebpf.Map, seed uint32) (ctMigration, error) {
	var res ctMigration
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return res, err
	}
	switch {
	case old.Type() != ebpf.Array || old.KeySize() != 4 || old.ValueSize() != ct.ValueSize():
		return res, fmt.Errorf("old conntrack is %s key=%d value=%d, want an array of %d-byte sets",
			old.Type(), old.KeySize(), old.ValueSize(), ct.ValueSize())
	case ct.Type() != ebpf.Array:
		return res, fmt.Errorf("conntrack is %s, not an array of sets", ct.Type())
	case old.MaxEntries()%uint32(ncpu) != 0 || ct.MaxEntries()%uint32(ncpu) != 0:
		return res, fmt.Errorf("conntrack sizes %d and %d are not split in %d CPU partitions",
			old.MaxEntries(), ct.MaxEntries(), ncpu)
	}
	oldSets, sets := old.MaxEntries()/uint32(ncpu), ct.MaxEntries()/uint32(ncpu)
	part := newCTPartition(sets)
	cpu := uint32(0)
	flush := func() error {
		n, d, err := part.write(ct, cpu)
		res.flows += n
		res.dropped += d
		return err
	}
	var cur ebpf.MapBatchCursor
	keys := make([]uint32, ctMigrateChunk)
	vals := make([]bpf.DatapathCtSet, ctMigrateChunk)
	for {
		n, err := old.BatchLookup(&cur, keys, vals, nil)
		for i := range n {
			if c := keys[i] / oldSets; c != cpu {
				if err := flush(); err != nil {
					return res, err
				}
				part.reset()
				cpu = c
			}
			for _, e := range vals[i].Way {
				if e.LastSeen != 0 {
					part.place(e, seed)
				}
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read old conntrack: %w", err)
		}
	}
	return res, flush()
}

// ctPartition is one CPU's partition of the new conntrack being filled.
type ctPartition struct {
	sets    []bpf.DatapathCtSet
	touched []uint32 // the sets place wrote, each once: write and reset visit only these
	dropped int
}

func newCTPartition(sets uint32) *ctPartition {
	return &ctPartition{sets: make([]bpf.DatapathCtSet, sets)}
}

func (p *ctPartition) reset() {
	for _, i := range p.touched {
		p.sets[i] = bpf.DatapathCtSet{}
	}
	p.touched, p.dropped = p.touched[:0], 0
}

// place puts an older version's entry e into its set by the conntrack
// hash, with the flow hash bits (enum ct_hash_bits) of seed's flow hash.
func (p *ctPartition) place(e bpf.DatapathCtEntry, seed uint32) {
	h := bpf.FlowHash(&e.Key, seed)
	e.Flags = e.Flags&(1<<bpf.DatapathCtHashBitsCT_LABEL_SHIFT-1) | uint32(h)<<bpf.DatapathCtHashBitsCT_LABEL_SHIFT
	e.HashHi = uint32(h >> 32)
	idx := bpf.ConntrackIndex(bpf.ConntrackHash(&e.Key), 0, uint32(len(p.sets)))
	s := &p.sets[idx]
	if s.Way[0].LastSeen == 0 { // ways fill in order: an empty set
		p.touched = append(p.touched, idx)
	}
	w := -1
	for i := range s.Way {
		if s.Way[i].LastSeen == 0 {
			w = i
			break
		}
		if w < 0 || ctWorth(s.Way[i]) < ctWorth(s.Way[w]) {
			w = i
		}
	}
	if s.Way[w].LastSeen != 0 {
		p.dropped++ // e or the way's flow
		if ctWorth(e) <= ctWorth(s.Way[w]) {
			return
		}
	}
	s.Way[w] = e
}

// ctWorth orders entries for keeping: established before new, then the
// most recently seen (last_seen: 64-bit jiffies, one clock for all).
func ctWorth(e bpf.DatapathCtEntry) uint64 {
	w := e.LastSeen >> 1
	if e.Flags&uint32(bpf.DatapathCtFlagsCT_F_NEW) == 0 {
		w |= 1 << 63
	}
	return w
}

// write writes the partition's non-empty sets (those place touched) as
// CPU cpu's partition of ct; it returns the flows written and those
// dropped.
func (p *ctPartition) write(ct *ebpf.Map, cpu uint32) (flows, dropped int, err error) {
	base := cpu * uint32(len(p.sets))
	keys := make([]uint32, 0, ctMigrateChunk)
	vals := make([]bpf.DatapathCtSet, 0, ctMigrateChunk)
	put := func() error {
		if len(keys) == 0 {
			return nil
		}
		if _, err := ct.BatchUpdate(keys, vals, nil); err != nil {
			return fmt.Errorf("write conntrack: %w", err)
		}
		keys, vals = keys[:0], vals[:0]
		return nil
	}
	for _, i := range p.touched {
		s := &p.sets[i]
		for w := range s.Way {
			if s.Way[w].LastSeen != 0 {
				flows++
			}
		}
		keys = append(keys, base+i)
		vals = append(vals, *s)
		if len(keys) == ctMigrateChunk {
			if err := put(); err != nil {
				return flows, p.dropped, err
			}
		}
	}
	return flows, p.dropped, put()
}

// migrateOldConntrack carries an older version's pinned conntrack over into
// ct (migrateConntrack) when there is one, and reports whether that went
// through (or there was none); failures are logged, not fatal: the flows
// then take the Maglev table again, as with any replaced map.
func (d *Datapath) migrateOldConntrack(ct *ebpf.Map, seed uint32, seedKnown bool) bool {
	path := d.pins.mapPath(bpf.MapConntrackV1)
	old, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		d.log.Warn("older conntrack not migrated (its flows take the Maglev table again)", "pin", path, "error", err)
		return false
	}
	defer old.Close()
	if !seedKnown {
		d.log.Warn("older conntrack migrated without the pinned flow hash seed: its flows' outer headers change once", "pin", path)
	}
	start := time.Now()
	res, err := migrateConntrack(old, ct, seed)
	if err != nil {
		d.log.Warn("older conntrack not (fully) migrated (its other flows take the Maglev table again)",
			"pin", path, "flows", res.flows, "error", err)
		return false
	}
	d.log.Info("migrated the older conntrack's flows to the new set hash", "from", bpf.MapConntrackV1, "to", bpf.MapConntrack,
		"flows", res.flows, "dropped", res.dropped, "duration", time.Since(start).Round(time.Millisecond))
	return true
}
