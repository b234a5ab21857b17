package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/cilium/ebpf"
)

// vip_sets layout (enum vip_set_layout in lb_maps.h).
const (
	vipWays    = int(DatapathVipSetLayoutVIP_WAYS)
	vipWayUsed = uint8(DatapathVipSetLayoutVIP_WAY_USED)
)

// VIPSetIndex is vip_set_index of lb_maps.h: the hash of a vips key whose
// low bits (& vip_set_mask) pick its vip_sets_v2 set. The key's pad byte
// is not hashed.
func VIPSetIndex(k DatapathVipKey) uint32 {
	a, b := binary.LittleEndian.Uint64(k.Addr[0:8]), binary.LittleEndian.Uint64(k.Addr[8:16])
	c := uint64(k.Port) | uint64(k.Proto)<<16 // the LE reading of bytes 16..18
	x := a * flowHashFin1
	x = (x ^ x>>29 ^ b) * flowHashFin2
	x = (x ^ x>>29 ^ c) * flowHashMul
	return uint32(x >> 40)
}

// vipEntry is one vips entry.
type vipEntry struct {
	k DatapathVipKey
	v DatapathVipValue
}

// vipSetModel is what this process wrote into one set of vip_sets, and
// the set's keys that did not fit (in vips only, counted in Overflow).
type vipSetModel struct {
	cur  DatapathVipSet
	over []vipEntry
}

// vipSets keeps vip_sets a copy of vips (lb_maps.h): every change of vips
// goes through it, in the order that keeps readers right (put: vips
// first; delete: vip_sets first), and every rewrite of a set is
// sequence-locked. The model of the table is loaded from vips (and the
// table rewritten where it differs) before the first change and by sync.
type vipSets struct {
	mu     sync.Mutex
	vips   *ebpf.Map
	table  *ebpf.Map // nil: an object without a set table (LBMaps.VipSets)
	mask   uint32
	loaded bool
	sets   map[uint32]*vipSetModel
	// ways is how many ways of a set the writer fills: all of them where
	// the CPU keeps stores and loads in order (x86), none elsewhere. The
	// reader has no barrier (lb.h, vip_find), so on a weakly ordered CPU
	// it could take a set caught mid-write for a stable one; a set whose
	// keys all overflow changes only its overflow count (one aligned
	// word) and sends every lookup to vips.
	ways int
	// index is the table's hash (LBMaps.VipSetIndex).
	index func(DatapathVipKey) uint32
}

// orderedWays is vipSets.ways for this CPU architecture.
func orderedWays() int {
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "386" {
		return vipWays
	}
	return 0
}

func newVIPSets(vips, table *ebpf.Map, index func(DatapathVipKey) uint32) *vipSets {
	s := &vipSets{vips: vips, table: table, ways: orderedWays(), index: index}
	if index == nil {
		s.index = VIPSetIndex
	}
	if table != nil {
		s.mask = table.MaxEntries() - 1
	}
	return s
}

// put writes k -> v into vips, then into its set.
func (s *vipSets) put(k DatapathVipKey, v DatapathVipValue) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.vips.Put(&k, &v); err != nil {
		return err
	}
	if s.table == nil {
		return nil
	}
	if err := s.load(); err != nil {
		return err
	}
	idx := s.index(k) & s.mask
	m := s.sets[idx]
	if m == nil {
		// An empty set: its seq is in the table only.
		m = &vipSetModel{}
		if err := s.table.Lookup(idx, &m.cur); err != nil {
			return fmt.Errorf("read vip_sets: %w", err)
		}
		s.sets[idx] = m
	}
	next := m.cur
	if w := m.find(k); w >= 0 {
		if next.Way[w].Value == v {
			return nil
		}
		next.Way[w].Value = v
	} else if i := m.overIndex(k); i >= 0 {
		m.over[i].v = v
		return nil
	} else if w := m.free(); w >= 0 && w < s.ways {
		next.Way[w] = usedWay(k, v)
	} else {
		m.over = append(m.over, vipEntry{k, v})
		next.Overflow++
	}
	return s.write(idx, m, next)
}

// del takes k out of its set, then out of vips. A key that overflowed
// its set takes the way k leaves.
func (s *vipSets) del(k DatapathVipKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table != nil {
		if err := s.load(); err != nil {
			return err
		}
		idx := s.index(k) & s.mask
		if m := s.sets[idx]; m != nil {
			next := m.cur
			changed := true
			if w := m.find(k); w >= 0 {
				next.Way[w] = DatapathVipWay{}
				if len(m.over) > 0 {
					next.Way[w] = usedWay(m.over[0].k, m.over[0].v)
					m.over = m.over[1:]
					next.Overflow--
				}
			} else if i := m.overIndex(k); i >= 0 {
				m.over = append(m.over[:i], m.over[i+1:]...)
				next.Overflow--
			} else {
				changed = false
			}
			if changed {
				if err := s.write(idx, m, next); err != nil {
					return err
				}
			}
			if m.empty() {
				delete(s.sets, idx)
			}
		}
	}
	return s.vips.Delete(&k)
}

// sync loads the model again from vips and rewrites every set of vip_sets
// that differs from it: after a restart, whatever the table held.
func (s *vipSets) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table == nil {
		return nil
	}
	s.loaded = false
	return s.load()
}

// load builds the model from vips and makes vip_sets match it, keeping
// the ways that are right where they are. Once per process, and again
// after a failed write.
func (s *vipSets) load() error {
	if s.loaded {
		return nil
	}
	cur := map[uint32]DatapathVipSet{}
	err := ReadArray(s.table, func(idx uint32, set *DatapathVipSet) {
		if *set != (DatapathVipSet{}) {
			cur[idx] = *set
		}
	})
	if err != nil {
		return fmt.Errorf("read vip_sets: %w", err)
	}
	want := map[uint32][]vipEntry{}
	err = ReadHash(s.vips, func(k *DatapathVipKey, v *DatapathVipValue) {
		idx := s.index(*k) & s.mask
		want[idx] = append(want[idx], vipEntry{*k, *v})
	})
	if err != nil {
		return fmt.Errorf("read vips: %w", err)
	}
	sets := make(map[uint32]*vipSetModel, len(want))
	var idxs []uint32
	var olds, news []DatapathVipSet
	for idx := range cur {
		if _, ok := want[idx]; !ok {
			want[idx] = nil
		}
	}
	for idx, es := range want {
		old := cur[idx]
		m := placeSet(old, es, s.ways)
		if next := m.cur; next != old || old.Seq&1 != 0 {
			next.Seq = old.Seq | 1
			idxs = append(idxs, idx)
			olds = append(olds, old)
			news = append(news, next)
		}
		m.cur = old
		sets[idx] = m
	}
	if err := s.writeAll(idxs, olds, news); err != nil {
		return err
	}
	for i, idx := range idxs {
		news[i].Seq++
		sets[idx].cur = news[i]
	}
	for idx, m := range sets {
		if m.empty() {
			delete(sets, idx)
		}
	}
	s.sets = sets
	s.loaded = true
	return nil
}

// placeSet returns the model of a set holding es in its first ways ways:
// the ways of old that
// hold one of es stay where they are (with es's value), the others take
// the free ways in order, the rest overflow. cur.Seq is old's.
func placeSet(old DatapathVipSet, es []vipEntry, ways int) *vipSetModel {
	m := &vipSetModel{cur: DatapathVipSet{Seq: old.Seq}}
	var rest []vipEntry
	for _, e := range es {
		placed := false
		for w := range old.Way[:ways] {
			if old.Way[w].Key.Pad == vipWayUsed && keyOf(old.Way[w]) == e.k && m.cur.Way[w].Key.Pad == 0 {
				m.cur.Way[w] = usedWay(e.k, e.v)
				placed = true
				break
			}
		}
		if !placed {
			rest = append(rest, e)
		}
	}
	for _, e := range rest {
		if w := m.free(); w >= 0 && w < ways {
			m.cur.Way[w] = usedWay(e.k, e.v)
		} else {
			m.over = append(m.over, e)
		}
	}
	m.cur.Overflow = uint32(len(m.over))
	return m
}

// write rewrites set idx from m.cur to next (Seq set here) under its
// sequence: odd, the new ways, even. A failure leaves the set odd at
// worst, which readers take for "look up vips", and makes the next change
// load the model again.
func (s *vipSets) write(idx uint32, m *vipSetModel, next DatapathVipSet) error {
	next.Seq = m.cur.Seq | 1
	if err := s.writeAll([]uint32{idx}, []DatapathVipSet{m.cur}, []DatapathVipSet{next}); err != nil {
		return err
	}
	next.Seq++
	m.cur = next
	if m.empty() {
		delete(s.sets, idx)
	}
	return nil
}

// writeAll rewrites the sets idxs from olds to news (news[i].Seq odd) in
// three whole-value writes of all of them: olds made odd, news, news made
// even. The kernel copies a value without order, so the middle step is
// the only one that changes more than the sequence.
func (s *vipSets) writeAll(idxs []uint32, olds, news []DatapathVipSet) error {
	if len(idxs) == 0 {
		return nil
	}
	odd := make([]DatapathVipSet, len(olds))
	for i := range olds {
		odd[i] = olds[i]
		odd[i].Seq = news[i].Seq
	}
	even := make([]DatapathVipSet, len(news))
	for i := range news {
		even[i] = news[i]
		even[i].Seq = news[i].Seq + 1
	}
	for _, vals := range [][]DatapathVipSet{odd, news, even} {
		if err := s.update(idxs, vals); err != nil {
			s.loaded = false
			return fmt.Errorf("write vip_sets: %w", err)
		}
	}
	return nil
}

func (s *vipSets) update(idxs []uint32, vals []DatapathVipSet) error {
	if len(idxs) == 1 {
		return s.table.Put(idxs[0], &vals[0])
	}
	const chunk = 4096
	for i := 0; i < len(idxs); i += chunk {
		j := min(i+chunk, len(idxs))
		n, err := s.table.BatchUpdate(idxs[i:j], vals[i:j], nil)
		if err != nil {
			return err
		}
		if n != j-i {
			return errors.New("short batch update")
		}
	}
	return nil
}

func usedWay(k DatapathVipKey, v DatapathVipValue) DatapathVipWay {
	k.Pad = vipWayUsed
	return DatapathVipWay{Key: k, Value: v}
}

func keyOf(w DatapathVipWay) DatapathVipKey {
	k := w.Key
	k.Pad = 0
	return k
}

// find returns the way holding k, or -1.
func (m *vipSetModel) find(k DatapathVipKey) int {
	for w := range m.cur.Way {
		if m.cur.Way[w].Key.Pad == vipWayUsed && keyOf(m.cur.Way[w]) == k {
			return w
		}
	}
	return -1
}

// free returns an empty way, or -1.
func (m *vipSetModel) free() int {
	for w := range m.cur.Way {
		if m.cur.Way[w].Key.Pad != vipWayUsed {
			return w
		}
	}
	return -1
}

func (m *vipSetModel) overIndex(k DatapathVipKey) int {
	for i, e := range m.over {
		if e.k == k {
			return i
		}
	}
	return -1
}

// empty reports whether the set holds no key. Its model is dropped then;
// the table keeps the set's seq, which the next change reads back
// (a sequence that went back to an earlier value would let a reader
// take a torn set for a stable one).
func (m *vipSetModel) empty() bool {
	for w := range m.cur.Way {
		if m.cur.Way[w].Key.Pad == vipWayUsed {
			return false
		}
	}
	return len(m.over) == 0
}

// verify reports the first difference between vip_sets and vips: every
// used way holds a vips entry in its own set with its value, every set
// counts in Overflow exactly its vips keys that no way holds, and no set
// is left odd.
func (s *vipSets) verify() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table == nil {
		return nil
	}
	want := map[uint32]map[DatapathVipKey]DatapathVipValue{}
	err := ReadHash(s.vips, func(k *DatapathVipKey, v *DatapathVipValue) {
		idx := s.index(*k) & s.mask
		if want[idx] == nil {
			want[idx] = map[DatapathVipKey]DatapathVipValue{}
		}
		want[idx][*k] = *v
	})
	if err != nil {
		return fmt.Errorf("read vips: %w", err)
	}
	var errs []error
	err = ReadArray(s.table, func(idx uint32, set *DatapathVipSet) {
		es := want[idx]
		held := 0
		for w, way := range set.Way {
			if way.Key.Pad != vipWayUsed {
				if way != (DatapathVipWay{}) {
					errs = append(errs, fmt.Errorf("set %d way %d: empty but not zero", idx, w))
				}
				continue
			}
			v, ok := es[keyOf(way)]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("set %d way %d: %v is not in vips (or not of this set)", idx, w, keyOf(way)))
			case v != way.Value:
				errs = append(errs, fmt.Errorf("set %d way %d: value %+v, vips has %+v", idx, w, way.Value, v))
			default:
				held++
			}
		}
		if set.Seq&1 != 0 {
			errs = append(errs, fmt.Errorf("set %d: seq %d is odd", idx, set.Seq))
		}
		if int(set.Overflow) != len(es)-held {
			errs = append(errs, fmt.Errorf("set %d: overflow %d, want %d (%d keys, %d in ways)", idx, set.Overflow, len(es)-held, len(es), held))
		}
	})
	if err != nil {
		return fmt.Errorf("read vip_sets: %w", err)
	}
	return errors.Join(errs...)
}
