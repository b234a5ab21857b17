package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Maglev table layout (enum maglev_layout in lb_maps.h).
const (
	maglevHdrBlocks    = uint32(DatapathMaglevLayoutMAGLEV_HDR_BLOCKS)
	maglevSlotsPerBlk  = uint32(DatapathMaglevLayoutMAGLEV_SLOTS_PER_BLOCK)
	maglevIDsPerBlk    = uint32(DatapathMaglevLayoutMAGLEV_IDS_PER_BLOCK)
	MaglevMaxBackends  = int(DatapathMaglevLayoutMAGLEV_MAX_BACKENDS)
	maglevBlockBytes   = 8
	maglevTableMaxSize = 1 << 24
)

// MaglevTable is one Maglev table as the data path reads it: Slots[s] is
// the backend of slot s as an index into Backends plus one (0: no
// backend), Backends the backend ids. len(Slots) is the table size M, a
// prime chosen by the control plane; a table has at most
// MaglevMaxBackends backends.
type MaglevTable struct {
	Slots    []uint16
	Backends []uint32
}

// TableOf returns the MaglevTable whose slot s holds backend id ids[s]
// (0: no backend): the form tests and benchmarks write tables in. Indexes
// follow the first appearance of each id.
func TableOf(ids []uint32) MaglevTable {
	t := MaglevTable{Slots: make([]uint16, len(ids))}
	index := map[uint32]uint16{}
	for s, id := range ids {
		if id == 0 {
			continue
		}
		i, ok := index[id]
		if !ok {
			t.Backends = append(t.Backends, id)
			i = uint16(len(t.Backends))
			index[id] = i
		}
		t.Slots[s] = i
	}
	return t
}

// IDs returns the backend id of every slot (0: none): TableOf's inverse.
func (t MaglevTable) IDs() []uint32 {
	out := make([]uint32, len(t.Slots))
	for s, i := range t.Slots {
		if i > 0 {
			out[s] = t.Backends[i-1]
		}
	}
	return out
}

// Blocks returns the number of map entries (8-byte blocks) the table takes.
func (t MaglevTable) Blocks() uint32 {
	slots := (uint32(len(t.Slots)) + maglevSlotsPerBlk - 1) / maglevSlotsPerBlk
	ids := (uint32(len(t.Backends)) + maglevIDsPerBlk - 1) / maglevIDsPerBlk
	return maglevHdrBlocks + slots + ids
}

func (t MaglevTable) validate() error {
	switch {
	case len(t.Slots) == 0 || len(t.Slots) > maglevTableMaxSize:
		return fmt.Errorf("maglev table of %d slots", len(t.Slots))
	case len(t.Backends) > MaglevMaxBackends:
		return fmt.Errorf("maglev table of %d backends (at most %d)", len(t.Backends), MaglevMaxBackends)
	}
	for s, i := range t.Slots {
		if int(i) > len(t.Backends) {
			return fmt.Errorf("maglev slot %d names backend %d of %d", s, i, len(t.Backends))
		}
	}
	return nil
}

// encode returns the table's blocks in the C layout.
func (t MaglevTable) encode() [][maglevBlockBytes]byte {
	buf := t.encodeInto(nil)
	blocks := make([][maglevBlockBytes]byte, len(buf)/maglevBlockBytes)
	for i := range blocks {
		copy(blocks[i][:], buf[i*maglevBlockBytes:])
	}
	return blocks
}

// encodeInto writes the table's blocks in the C layout into buf's storage
// (grown as needed) and returns them.
func (t MaglevTable) encodeInto(buf []byte) []byte {
	n := int(t.Blocks()) * maglevBlockBytes
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	clear(buf)
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(t.Slots)))
	binary.LittleEndian.PutUint32(buf[4:], uint32(len(t.Backends)))
	slots := buf[maglevHdrBlocks*maglevBlockBytes:]
	for s, i := range t.Slots {
		binary.LittleEndian.PutUint16(slots[2*s:], i) // four 16-bit lanes per block, in slot order
	}
	first := (maglevHdrBlocks + (uint32(len(t.Slots))+maglevSlotsPerBlk-1)/maglevSlotsPerBlk) * maglevBlockBytes
	for i, id := range t.Backends {
		binary.LittleEndian.PutUint32(buf[first+4*uint32(i):], id) // two 32-bit lanes per block
	}
	return buf
}

// encodeBufs recycles the buffers NewTable encodes tables in.
var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// Table is a Maglev table loaded into the kernel (an inner map of maglev),
// ready to be installed for any number of VIPs. Close releases this
// process's handle; the kernel keeps the table while a VIP uses it.
type Table struct {
	m  *ebpf.Map
	id ebpf.MapID
}

// ID returns the kernel's id of the table's map.
func (t *Table) ID() ebpf.MapID { return t.id }

// Close releases the handle.
func (t *Table) Close() error { return t.m.Close() }

// Pin pins the table at path (on bpffs), replacing what is pinned there:
// the table then outlives every handle and every VIP until unpinned.
// What is there is removed only when the pin finds the path taken (a
// start pins thousands of tables at free paths).
func (t *Table) Pin(path string) error {
	err := t.m.Pin(path)
	if errors.Is(err, os.ErrExist) {
		_ = os.Remove(path)
		err = t.m.Pin(path)
	}
	if err != nil {
		return fmt.Errorf("pin maglev table: %w", err)
	}
	return nil
}

// LoadPinnedTable opens the table pinned at path.
func LoadPinnedTable(path string) (*Table, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open pinned maglev table: %w", err)
	}
	id, err := mapID(m)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("pinned maglev table: %w", err), m.Close())
	}
	return &Table{m: m, id: id}, nil
}

// NewTable loads t into a new inner map, written through a memory
// mapping (the map is BPF_F_MMAPABLE): one copy, no per-entry syscall
// work. The mapping is removed at once; a TableLoader removes many at a
// time.
func (l *LB) NewTable(t MaglevTable) (*Table, error) {
	return newTable(t, writeMapped)
}

// newTable creates the inner map of t and fills it with write.
func newTable(t MaglevTable, write func(*ebpf.Map, []byte) error) (*Table, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	bp := encodeBufs.Get().(*[]byte)
	defer encodeBufs.Put(bp)
	*bp = t.encodeInto(*bp)
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "maglev_table", Type: ebpf.Array, KeySize: 4, ValueSize: maglevBlockBytes,
		MaxEntries: t.Blocks(), Flags: unix.BPF_F_INNER_MAP | unix.BPF_F_MMAPABLE,
	})
	if err != nil {
		return nil, fmt.Errorf("create maglev table: %w", err)
	}
	if err := write(m, *bp); err != nil {
		return nil, errors.Join(fmt.Errorf("fill maglev table: %w", err), m.Close())
	}
	id, err := mapID(m)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("maglev table: %w", err), m.Close())
	}
	return &Table{m: m, id: id}, nil
}

// writeMapped copies data to the start of an mmapable array's values
// through a mapping it removes at once (ebpf.Map.Memory keeps its mapping
// until garbage collected, and thousands of tables would stay mapped).
func writeMapped(m *ebpf.Map, data []byte) error {
	b, err := unix.Mmap(m.FD(), 0, pageRound(len(data)), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map table memory: %w", err)
	}
	copy(b, data)
	return unix.Munmap(b)
}

func pageRound(n int) int {
	page := os.Getpagesize()
	return (n + page - 1) / page * page
}

// TableBatch is how many outer-map entries InstallTables writes with one
// batch update. Each batch waits for one RCU grace period (instead of one
// per VIP); a batch also bounds how many replaced tables the kernel holds
// until that grace period ends.
const TableBatch = 1024

// InstallTables points maglev[vids[i]] at tables[i], TableBatch VIPs per
// batch update; each VIP switches atomically. On error, earlier batches
// are installed and the rest are not.
func (l *LB) InstallTables(vids []uint32, tables []*Table) error {
	if len(vids) != len(tables) {
		return fmt.Errorf("install maglev tables: %d vips, %d tables", len(vids), len(tables))
	}
	for _, id := range vids {
		if err := l.checkVIP(id); err != nil {
			return err
		}
	}
	fds := make([]uint32, len(tables))
	for i, t := range tables {
		fds[i] = uint32(t.m.FD())
	}
	for start := 0; start < len(vids); start += TableBatch {
		end := min(start+TableBatch, len(vids))
		if _, err := l.m.Maglev.BatchUpdate(vids[start:end], fds[start:end], nil); err != nil {
			return fmt.Errorf("install maglev tables of vips %d..%d: %w", vids[start], vids[end-1], err)
		}
	}
	return nil
}

// SetTable installs the table of slot -> backend id ids for vipID (tests
// and benchmarks; the control plane shares tables with NewTable and
// InstallTables).
func (l *LB) SetTable(vipID uint32, ids []uint32) error {
	t, err := l.NewTable(TableOf(ids))
	if err != nil {
		return err
	}
	defer t.Close()
	return l.InstallTables([]uint32{vipID}, []*Table{t})
}

// DeleteTables removes the Maglev tables of vids (their traffic is
// dropped); a VIP without a table is no error.
func (l *LB) DeleteTables(vids ...uint32) error {
	var errs []error
	for _, id := range vids {
		if err := l.m.Maglev.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("delete maglev table of vip %d: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// InstalledTables returns the map id of every installed table by vip id.
func (l *LB) InstalledTables() (map[uint32]ebpf.MapID, error) {
	out := map[uint32]ebpf.MapID{}
	// Batch lookups: iterating visits every slot of the outer array
	// (lb.max-vips) with two syscalls each, empty ones included.
	err := ReadArray(l.m.Maglev, func(k uint32, id *ebpf.MapID) {
		if *id != 0 {
			out[k] = *id
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read maglev: %w", err)
	}
	return out, nil
}

// SetTableMeta records what was installed in maglev[vipID].
func (l *LB) SetTableMeta(vipID uint32, m DatapathTableMeta) error {
	if err := l.checkVIP(vipID); err != nil {
		return err
	}
	if err := l.m.MaglevMeta.Put(vipID, &m); err != nil {
		return fmt.Errorf("write table record of vip %d: %w", vipID, err)
	}
	return nil
}

// TableMetas returns every table record with a table id.
func (l *LB) TableMetas() (map[uint32]DatapathTableMeta, error) {
	out := map[uint32]DatapathTableMeta{}
	err := ReadArray(l.m.MaglevMeta, func(k uint32, v *DatapathTableMeta) {
		if v.TableId != 0 {
			out[k] = *v
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read table records: %w", err)
	}
	return out, nil
}

// ReadTable reads back the table installed for vipID. It needs
// CAP_SYS_ADMIN (the kernel hands out a map by id only then): tests.
func (l *LB) ReadTable(vipID uint32) (MaglevTable, error) { return ReadTable(l.m.Maglev, vipID) }

// ReadTable reads back the table installed for vipID in maglev (an outer
// map: pinned, for instance), like LB.ReadTable.
func ReadTable(maglev *ebpf.Map, vipID uint32) (MaglevTable, error) {
	var id ebpf.MapID
	if err := maglev.Lookup(vipID, &id); err != nil {
		return MaglevTable{}, fmt.Errorf("maglev table of vip %d: %w", vipID, err)
	}
	m, err := ebpf.NewMapFromID(id)
	if err != nil {
		return MaglevTable{}, fmt.Errorf("maglev table of vip %d: %w", vipID, err)
	}
	defer m.Close()
	blocks := make([][maglevBlockBytes]byte, m.MaxEntries())
	err = ReadArray(m, func(k uint32, v *[maglevBlockBytes]byte) { blocks[k] = *v })
	if err != nil {
		return MaglevTable{}, fmt.Errorf("maglev table of vip %d: %w", vipID, err)
	}
	return decodeTable(blocks)
}

func decodeTable(blocks [][maglevBlockBytes]byte) (MaglevTable, error) {
	slots := binary.LittleEndian.Uint32(blocks[0][0:])
	n := binary.LittleEndian.Uint32(blocks[0][4:])
	t := MaglevTable{Slots: make([]uint16, slots), Backends: make([]uint32, n)}
	if t.Blocks() != uint32(len(blocks)) {
		return MaglevTable{}, fmt.Errorf("maglev table header (%d slots, %d backends) does not match its %d blocks", slots, n, len(blocks))
	}
	for s := range t.Slots {
		b := maglevHdrBlocks + uint32(s)/maglevSlotsPerBlk
		t.Slots[s] = binary.LittleEndian.Uint16(blocks[b][2*(uint32(s)%maglevSlotsPerBlk):])
	}
	first := maglevHdrBlocks + (slots+maglevSlotsPerBlk-1)/maglevSlotsPerBlk
	for i := range t.Backends {
		b := first + uint32(i)/maglevIDsPerBlk
		t.Backends[i] = binary.LittleEndian.Uint32(blocks[b][4*(uint32(i)%maglevIDsPerBlk):])
	}
	return t, nil
}
