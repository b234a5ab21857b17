package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// Names of the objects in the datapath collection that other packages use.
const (
	// ProgramXDP is the XDP entry program attached to every uplink.
	ProgramXDP = DatapathProgAirdXdp
	// MapMaglev is the ARRAY_OF_MAPS vip_id -> Maglev table; its inner maps
	// are sized at load time (Config.MaglevTableSize).
	MapMaglev = DatapathMapMaglev
	// MapConntrack is the flow -> backend table: an array of
	// DatapathCtSet, ConntrackSize/4/possible-CPUs sets per CPU (the
	// ct_sets constant), sized at load time (Config.ConntrackSize).
	MapConntrack = DatapathMapConntrack
)

// Defaults of the load-time sizes; they match the C definitions.
const (
	DefaultMaglevTableSize = 65537
	DefaultConntrackSize   = 65536
)

// Config holds the load-time parameters of the datapath collection.
type Config struct {
	// MaglevTableSize is the number of slots of every Maglev table (a
	// prime; see lb/maglev). 0 means DefaultMaglevTableSize.
	MaglevTableSize uint32
	// ConntrackSize is the number of flows conntrack holds. 0 means
	// DefaultConntrackSize.
	ConntrackSize uint32
}

// MaglevTableSizeOrDefault returns the effective Maglev table size.
func (c Config) MaglevTableSizeOrDefault() uint32 { return c.withDefaults().MaglevTableSize }

func (c Config) withDefaults() Config {
	if c.MaglevTableSize == 0 {
		c.MaglevTableSize = DefaultMaglevTableSize
	}
	if c.ConntrackSize == 0 {
		c.ConntrackSize = DefaultConntrackSize
	}
	return c
}

// LoadSpec returns a fresh CollectionSpec of the embedded datapath object
// with the default Config. The caller may modify it before loading.
func LoadSpec() (*ebpf.CollectionSpec, error) {
	return LoadSpecWith(Config{})
}

// LoadSpecWith returns a fresh CollectionSpec of the embedded datapath
// object configured by cfg: the Maglev inner map template and the
// maglev_size constant get the table size, conntrack its size.
func LoadSpecWith(cfg Config) (*ebpf.CollectionSpec, error) {
	spec, err := LoadDatapath()
	if err != nil {
		return nil, fmt.Errorf("load datapath spec: %w", err)
	}
	if err := Configure(spec, cfg); err != nil {
		return nil, err
	}
	return spec, nil
}

// Configure applies cfg to a datapath CollectionSpec.
func Configure(spec *ebpf.CollectionSpec, cfg Config) error {
	cfg = cfg.withDefaults()
	if cfg.MaglevTableSize < 2 || cfg.ConntrackSize < 1 {
		return fmt.Errorf("configure datapath: maglev table size %d / conntrack size %d too small",
			cfg.MaglevTableSize, cfg.ConntrackSize)
	}
	mg := spec.Maps[MapMaglev]
	if mg == nil || mg.InnerMap == nil {
		return errors.New("configure datapath: no maglev map-in-map in the object")
	}
	mg.InnerMap.MaxEntries = cfg.MaglevTableSize
	v := spec.Variables[DatapathVarMaglevSize]
	if v == nil {
		return errors.New("configure datapath: no maglev_size constant in the object")
	}
	if err := v.Set(cfg.MaglevTableSize); err != nil {
		return fmt.Errorf("configure datapath: set maglev_size: %w", err)
	}
	ct := spec.Maps[MapConntrack]
	if ct == nil {
		return errors.New("configure datapath: no conntrack map in the object")
	}
	if ct.InnerMap != nil {
		ct.InnerMap.MaxEntries = cfg.ConntrackSize
		return nil
	}
	if sets := spec.Variables[DatapathVarCtSets]; sets != nil {
		// Per-CPU partitions of 4-way sets: ConntrackSize flows in all.
		n, err := ebpf.PossibleCPU()
		if err != nil {
			return fmt.Errorf("configure datapath: %w", err)
		}
		per := max(cfg.ConntrackSize/4/uint32(n), 1)
		if err := sets.Set(per); err != nil {
			return fmt.Errorf("configure datapath: set ct_sets: %w", err)
		}
		ct.MaxEntries = per * uint32(n)
		return nil
	}
	size := cfg.ConntrackSize
	if ct.Flags&bpfFNoCommonLRU != 0 {
		// The kernel gives every CPU the same share of a per-CPU LRU
		// and rounds max_entries up to a multiple of the possible CPUs;
		// do it here so the pinned map stays compatible with the spec.
		n, err := ebpf.PossibleCPU()
		if err != nil {
			return fmt.Errorf("configure datapath: %w", err)
		}
		size = (size + uint32(n) - 1) / uint32(n) * uint32(n)
	}
	ct.MaxEntries = size
	return nil
}

// bpfFNoCommonLRU is BPF_F_NO_COMMON_LRU (linux/bpf.h).
const bpfFNoCommonLRU = 2

// Families returns every family that indexes family_stats, in index order.
func Families() []DatapathFamily {
	fams := make([]DatapathFamily, 0, DatapathFamilyFAMILY_MAX)
	for f := DatapathFamily(0); f < DatapathFamilyFAMILY_MAX; f++ {
		fams = append(fams, f)
	}
	return fams
}

// String returns the name aird uses for the family in stats, logs and
// metrics: "ipv4", "ipv6", "other" or "malformed".
func (f DatapathFamily) String() string {
	switch f {
	case DatapathFamilyFAMILY_IPV4:
		return "ipv4"
	case DatapathFamilyFAMILY_IPV6:
		return "ipv6"
	case DatapathFamilyFAMILY_OTHER:
		return "other"
	case DatapathFamilyFAMILY_MALFORMED:
		return "malformed"
	default:
		return fmt.Sprintf("family(%d)", uint32(f))
	}
}
