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

	"github.com/aird-net/aird/bpf"
)

// load loads the datapath objects, reusing every compatible pinned map,
// pins the maps it had to create and removes pins of maps the object no
// longer has (an upgrade renamed or dropped them).
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
	for name, ms := range spec.Maps {
		if isInternalMap(name) {
			continue // .rodata and friends belong to this load only
		}
		names = append(names, name)
		m, err := d.adoptMap(name, ms)
		if err != nil {
			return nil, err
		}
		if m != nil {
			adopted[name] = m
		}
	}
	sort.Strings(names)

	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: adopted})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load bpf objects: %w\n%+v", err, ve)
		}
		return nil, fmt.Errorf("load bpf objects: %w", err)
	}

	defer coll.Close() // what NewObjects leaves: internal maps only
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
	d.removeStalePins(names)
	return bpf.NewObjects(coll)
}

// removeStalePins unpins every map pin whose name the object does not
// have: a map an earlier version had (renamed or dropped) would otherwise
// stay pinned, and hold its memory, forever.
func (d *Datapath) removeStalePins(names []string) {
	entries, err := os.ReadDir(d.pins.mapsDir())
	if err != nil {
		d.log.Warn("stale map pins not checked", "error", err)
		return
	}
	for _, e := range entries {
		if slices.Contains(names, e.Name()) {
			continue
		}
		path := filepath.Join(d.pins.mapsDir(), e.Name())
		if err := removePin(path); err != nil {
			d.log.Warn("stale map pin not removed", "pin", path, "error", err)
			continue
		}
		d.log.Info("removed the pin of a map this version does not have", "pin", path)
	}
}

// adoptMap returns the map pinned for name if it can serve spec, nil if
// there is none or it is incompatible (it will be replaced).
func (d *Datapath) adoptMap(name string, spec *ebpf.MapSpec) (*ebpf.Map, error) {
	path := d.pins.mapPath(name)
	m, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		d.log.Warn("pinned map unusable, replacing it", "map", name, "pin", path, "error", err)
		return nil, nil
	}
	if err := spec.Compatible(m); err != nil {
		m.Close()
		d.log.Warn("pinned map incompatible with the new program, replacing it (its state is lost)",
			"map", name, "pin", path, "error", err)
		return nil, nil
	}
	if spec.InnerMap != nil {
		// The kernel fixed the inner map layout (and the verifier
		// trusts it) when the outer map was created; Compatible does
		// not look at it.
		if err := innerCompatible(m, spec.InnerMap); err != nil {
			m.Close()
			d.log.Warn("pinned map-in-map not adopted, replacing it (the control plane refills it)",
				"map", name, "pin", path, "reason", err)
			return nil, nil
		}
	}
	return m, nil
}

// innerCompatible checks the inner maps of a pinned ARRAY_OF_MAPS against
// the inner template. An outer map without inner maps tells nothing about
// the template it was created with, so it is not adopted either (it holds
// no state).
func innerCompatible(m *ebpf.Map, inner *ebpf.MapSpec) error {
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
		return inner.Compatible(im)
	}
	return errors.New("no inner maps to compare with")
}

func isInternalMap(name string) bool { return strings.HasPrefix(name, ".") }
