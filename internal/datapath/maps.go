package datapath

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// load loads the collection, reusing every compatible pinned map, and pins
// the maps it had to create.
func (d *Datapath) load() (*ebpf.Collection, error) {
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

	for _, name := range names {
		if adopted[name] != nil {
			d.log.Info("adopted pinned map", "map", name, "pin", d.pins.mapPath(name))
			continue
		}
		m := coll.Maps[name]
		if err := pinReplace(m.Pin, d.pins.mapPath(name)); err != nil {
			coll.Close()
			return nil, fmt.Errorf("pin map %s: %w", name, err)
		}
	}
	return coll, nil
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
