package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/bpf"
)

// load loads the datapath objects, reusing every compatible pinned map,
// pins the maps it had to create and notes the pins of maps the object no
// longer has (an upgrade renamed or dropped them) for removal once the new
// program is attached (stalePins).
func (d *Datapath) load() (*bpf.Objects, error) {
	spec, err := bpf.LoadSpecWith(d.opts.bpfConfig())
	if err != nil {
		return nil, err
	}

	adopted := map[string]*ebpf.Map{}
	defer func() {
		for _, m := range adopted {
			m.Close() // the collection holds its own clone
		}
	}()
	var names []string
	var unchecked []string // map-in-maps whose inner layout could not be read
	for name, ms := range spec.Maps {
		if isInternalMap(name) {
			continue // .rodata and friends belong to this load only
		}
		names = append(names, name)
		m, checked, err := d.adoptMap(name, ms)
		if err != nil {
			return nil, err
		}
		if m != nil {
			adopted[name] = m
			if !checked {
				unchecked = append(unchecked, name)
			}
		}
	}
	sort.Strings(names)
	d.dropOrphanedIDMaps(adopted)
	if adopted[bpf.MapConntrack] == nil && adopted[bpf.DatapathMapCtTagsV2] != nil {
		// ct_tags summarises conntrack's sets: a summary of other
		// content could tell a SYN that its flow is not in a set
		// that holds it. A new map is all "unknown".
		adopted[bpf.DatapathMapCtTagsV2].Close()
		delete(adopted, bpf.DatapathMapCtTagsV2)
		d.log.Info("pinned map not adopted: it summarises a conntrack that is new", "map", bpf.DatapathMapCtTagsV2)
	}
	// An older version's conntrack (another set hash) is carried over
	// when the maps that give its ids their meaning are adopted.
	migrate := adopted[bpf.MapConntrack] == nil && idOwnersAdopted(adopted)
	seed, seedKnown := pinnedHashSeed(adopted[bpf.DatapathMapSettings])
	// An older version's counter maps are added into new pipeline
	// counters; adopted ones already hold them.
	newStats := adopted[bpf.MapStats] == nil

	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: adopted})
	if err != nil && len(unchecked) > 0 {
		// The verifier checks the program against the inner layout the
		// pinned map was created with: a rejection means an older
		// layout. Load again with those maps created afresh.
		d.log.Warn("loading with the pinned map-in-maps failed; replacing them (the control plane refills them)",
			"maps", strings.Join(unchecked, ","), "error", oneLine(err))
		for _, name := range unchecked {
			adopted[name].Close()
			delete(adopted, name)
		}
		coll, err = ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: adopted})
	}
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load bpf objects: %w\n%+v", err, ve)
		}
		return nil, fmt.Errorf("load bpf objects: %w", err)
	}

	defer coll.Close() // what NewObjects leaves: internal maps only
	// Carried over before the new maps are pinned: a new map's pin is
	// what tells the next start that its carry-over is done, so a start
	// that dies before it does the carry-over again from the older pins,
	// which are removed only after. An older map whose carry-over
	// failed stays pinned through this run.
	keep := map[string]bool{}
	if migrate && !d.migrateOldConntrack(coll.Maps[bpf.MapConntrack], seed, seedKnown) {
		keep[bpf.MapConntrackV1] = true
	}
	if newStats {
		for _, name := range d.migrateOldStats(coll.Maps[bpf.MapStats]) {
			keep[name] = true
		}
	}
	for _, name := range names {
		if adopted[name] != nil {
			d.log.Info("adopted pinned map", "map", name, "pin", d.pins.mapPath(name))
			continue
		}
		m := coll.Maps[name]
		if err := pinReplace(m.Pin, d.pins.mapPath(name)); err != nil {
			return nil, fmt.Errorf("pin map %s: %w", name, err)
		}
	}
	d.stalePins = d.listStalePins(names, keep)
	return bpf.NewObjects(coll)
}

// idOwnersAdopted reports whether every map that defines vip and backend
// ids (bpf.IDOwnerMaps) was adopted.
func idOwnersAdopted(adopted map[string]*ebpf.Map) bool {
	for _, name := range bpf.IDOwnerMaps() {
		if adopted[name] == nil {
			return false
		}
	}
	return true
}

// dropOrphanedIDMaps forgets the adopted maps whose entries refer to vip
// or backend ids when a map that defines those ids is not adopted: they
// are created afresh (and pinned over the old ones) instead.
func (d *Datapath) dropOrphanedIDMaps(adopted map[string]*ebpf.Map) {
	var missing []string
	for _, name := range bpf.IDOwnerMaps() {
		if adopted[name] == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return
	}
	for _, name := range bpf.IDDependentMaps() {
		if m := adopted[name]; m != nil {
			m.Close()
			delete(adopted, name)
			d.log.Warn("pinned map not adopted: the maps that define its ids are new, so its entries would be misread (its state is lost)",
				"map", name, "new", strings.Join(missing, ","))
		}
	}
}

// listStalePins returns the paths of the map pins whose name the object
// does not have, but those in keep (an older map whose carry-over failed,
// left for a later start): a map an earlier version had (renamed or
// dropped) would otherwise stay pinned, and hold its memory, forever.
func (d *Datapath) listStalePins(names []string, keep map[string]bool) []string {
	entries, err := os.ReadDir(d.pins.mapsDir())
	if err != nil {
		d.log.Warn("stale map pins not checked", "error", err)
		return nil
	}
	var stale []string
	for _, e := range entries {
		if slices.Contains(names, e.Name()) {
			continue
		}
		path := filepath.Join(d.pins.mapsDir(), e.Name())
		if keep[e.Name()] {
			d.log.Warn("older map pin kept: its carry-over failed (a later start removes it)", "pin", path)
			continue
		}
		stale = append(stale, path)
	}
	return stale
}

// removeStalePins unpins what listStalePins found at Open. It runs once
// the new program is attached (SetUplinks): until then the older program
// may still run with those maps, and a start that fails before leaves
// them pinned for a rollback to the older version, which adopts them.
// Called with d.mu held.
func (d *Datapath) removeStalePins() {
	for _, path := range d.stalePins {
		if err := removePin(path); err != nil {
			d.log.Warn("stale map pin not removed", "pin", path, "error", err)
			continue
		}
		d.log.Info("removed the pin of a map this version does not have", "pin", path)
	}
	d.stalePins = nil
}

// adoptMap returns the map pinned for name if it can serve spec, nil if
// there is none or it is incompatible (it will be replaced). checked is
// false for a map-in-map whose inner layout could not be compared (it
// takes CAP_SYS_ADMIN to open an inner map): the load itself tells.
func (d *Datapath) adoptMap(name string, spec *ebpf.MapSpec) (m *ebpf.Map, checked bool, err error) {
	path := d.pins.mapPath(name)
	m, err = ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		d.log.Warn("pinned map unusable, replacing it", "map", name, "pin", path, "error", err)
		return nil, true, nil
	}
	if err := spec.Compatible(m); err != nil {
		m.Close()
		d.log.Warn("pinned map incompatible with the new program, replacing it (its state is lost)",
			"map", name, "pin", path, "error", err)
		return nil, true, nil
	}
	if spec.InnerMap == nil {
		return m, true, nil
	}
	// The kernel fixed the inner map layout (and the verifier trusts it)
	// when the outer map was created; Compatible does not look at it.
	err = innerCompatible(m, *spec.InnerMap)
	if errors.Is(err, os.ErrPermission) {
		return m, false, nil
	}
	if err != nil {
		m.Close()
		d.log.Warn("pinned map-in-map not adopted, replacing it (the control plane refills it)",
			"map", name, "pin", path, "reason", err)
		return nil, true, nil
	}
	return m, true, nil
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// innerCompatible checks the inner maps of a pinned ARRAY_OF_MAPS against
// the inner template; with BPF_F_INNER_MAP every inner map has its own
// size. An outer map without inner maps tells nothing about the template it
// was created with, so it is not adopted either (it holds no state).
func innerCompatible(m *ebpf.Map, inner ebpf.MapSpec) error {
	var id ebpf.MapID
	for k := uint32(0); k < m.MaxEntries(); k++ {
		err := m.Lookup(k, &id)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read slot %d: %w", k, err)
		}
		im, err := ebpf.NewMapFromID(id)
		if err != nil {
			return fmt.Errorf("inner map %d: %w", id, err)
		}
		defer im.Close()
		if inner.Flags&unix.BPF_F_INNER_MAP != 0 {
			inner.MaxEntries = im.MaxEntries()
		}
		return inner.Compatible(im)
	}
	return errors.New("no inner maps to compare with")
}

func isInternalMap(name string) bool { return strings.HasPrefix(name, ".") }
