package bpf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
)

// Names of the objects in the datapath collection that other packages use.
const (
	// ProgramXDP is the XDP entry program attached to every uplink.
	ProgramXDP = DatapathProgAirdXdp
	// MapMaglev is the ARRAY_OF_MAPS vip_id -> Maglev table; every inner
	// map has its own size (BPF_F_INNER_MAP, see MaglevTable).
	MapMaglev = DatapathMapMaglevV2
	// MapConntrack is the flow -> backend table: an array of
	// DatapathCtSet, ConntrackSize/4/possible-CPUs sets per CPU (the
	// ct_sets constant), sized at load time (Config.ConntrackSize). A
	// flow's set is ConntrackIndex(ConntrackHash(key), ...).
	MapConntrack = DatapathMapConntrackV2
	// MapConntrackV1 is the conntrack of older objects, placed by the
	// Maglev hash (ConntrackIndex(FlowHash(key, seed), ...)): an upgrade
	// copies its entries into MapConntrack (internal/datapath).
	MapConntrackV1 = "conntrack"
	// MapStats is the pipeline's counters: one per-CPU
	// DatapathPipelineCounters (families, events, drops).
	MapStats = DatapathMapPipelineStats
)

// The counter maps of older objects, one per kind, each a per-CPU array
// indexed by its enum: an upgrade adds their counts into MapStats
// (internal/datapath), so the counters never go backwards.
const (
	// MapFamilyStatsV1 held DatapathFamilyCounter per DatapathFamily.
	MapFamilyStatsV1 = "family_stats"
	// MapEventStatsV1 held a uint64 per DatapathLbStat.
	MapEventStatsV1 = "lb_stats"
	// MapDropStatsV1 held a uint64 per DatapathDropReason.
	MapDropStatsV1 = "drop_stats"
)

// ctTagsV1 is the name of ct_tags_v2 in older objects.
const ctTagsV1 = "ct_tags"

// ConntrackMapName returns the name of spec's conntrack map: MapConntrack,
// or MapConntrackV1 in an older object (benchmarks compare them).
func ConntrackMapName(spec *ebpf.CollectionSpec) string {
	if spec.Maps[MapConntrack] == nil && spec.Maps[MapConntrackV1] != nil {
		return MapConntrackV1
	}
	return MapConntrack
}

// Defaults and bounds of the load-time sizes.
const (
	// DefaultMaxVIPs is the default number of vip ids (lb.max-vips).
	DefaultMaxVIPs = 65536
	// DefaultMaxBackends is the default number of backend ids
	// (lb.max-backends).
	DefaultMaxBackends = 65536
	// MaxIDs bounds MaxVIPs and MaxBackends. It is below the 24 bits a
	// probe mark has for the backend id (ProbeMark).
	MaxIDs = 1 << 20
	// DefaultConntrackSize matches the C definition.
	DefaultConntrackSize = 65536
	// VIPEntriesPerID is how many vips entries the map holds per vip id:
	// a service, its VIP's address entry and a fragments-only entry.
	VIPEntriesPerID = 3
)

// Config holds the load-time parameters of the datapath collection.
type Config struct {
	// MaxVIPs is the number of vip ids (services): vip ids are
	// 0 .. MaxVIPs-1. 0 means DefaultMaxVIPs.
	MaxVIPs uint32
	// MaxBackends is the number of backend ids (distinct backend
	// addresses): backend ids are 1 .. MaxBackends. 0 means
	// DefaultMaxBackends.
	MaxBackends uint32
	// ConntrackSize is the number of flows conntrack holds. 0 means
	// DefaultConntrackSize.
	ConntrackSize uint32
}

func (c Config) withDefaults() Config {
	if c.MaxVIPs == 0 {
		c.MaxVIPs = DefaultMaxVIPs
	}
	if c.MaxBackends == 0 {
		c.MaxBackends = DefaultMaxBackends
	}
	if c.ConntrackSize == 0 {
		c.ConntrackSize = DefaultConntrackSize
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.MaxVIPs > MaxIDs:
		return fmt.Errorf("%d vip ids is more than %d", c.MaxVIPs, MaxIDs)
	case c.MaxBackends > MaxIDs:
		return fmt.Errorf("%d backend ids is more than %d", c.MaxBackends, MaxIDs)
	case c.ConntrackSize < 1:
		return fmt.Errorf("conntrack size %d too small", c.ConntrackSize)
	}
	return nil
}

// LoadSpec returns a fresh CollectionSpec of the embedded datapath object
// with the default Config. The caller may modify it before loading.
func LoadSpec() (*ebpf.CollectionSpec, error) {
	return LoadSpecWith(Config{})
}

// LoadSpecWith returns a fresh CollectionSpec of the embedded datapath
// object configured by cfg: the maps indexed by ids get the id spaces,
// conntrack its size.
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
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("configure datapath: %w", err)
	}
	sizes := map[string]uint32{
		DatapathMapVips:       VIPEntriesPerID * cfg.MaxVIPs,
		DatapathMapMaglevV2:   cfg.MaxVIPs,
		DatapathMapMaglevMeta: cfg.MaxVIPs,
		DatapathMapVipStats:   cfg.MaxVIPs,
		DatapathMapBackends:   cfg.MaxBackends + 1,
		DatapathMapBackendCpu: cfg.MaxBackends + 1,
	}
	for name, n := range sizes {
		m := spec.Maps[name]
		if m == nil {
			return fmt.Errorf("configure datapath: no map %s in the object", name)
		}
		m.MaxEntries = n
	}
	if err := configureVIPSets(spec, VIPEntriesPerID*cfg.MaxVIPs); err != nil {
		return err
	}
	if mg := spec.Maps[MapMaglev]; mg.InnerMap == nil {
		return errors.New("configure datapath: maglev is not a map-in-map")
	}
	return configureConntrack(spec, cfg.ConntrackSize)
}

// VIPSets returns the number of vip_sets sets for a vips map of entries:
// the power of two at or above entries/2 (at least 1).
func VIPSets(entries uint32) uint32 {
	n := uint32(1)
	for n < (entries+1)/2 {
		n <<= 1
	}
	return n
}

// configureVIPSets sizes vip_sets and vip_set_mask for a vips map of
// entries.
func configureVIPSets(spec *ebpf.CollectionSpec, entries uint32) error {
	m := vipSetTable(spec)
	mask := spec.Variables[DatapathVarVipSetMask]
	if m == nil && mask == nil {
		return nil // an object older than vip_sets (benchmarks compare them)
	}
	if m == nil || mask == nil {
		return errors.New("configure datapath: no vip_sets map or vip_set_mask in the object")
	}
	n := VIPSets(entries)
	if err := mask.Set(n - 1); err != nil {
		return fmt.Errorf("configure datapath: set vip_set_mask: %w", err)
	}
	m.MaxEntries = n
	return nil
}

// vipSetTable returns the object's set table: vip_sets_v2, or in another
// build's object the vip_sets map of its hash's version (lb_maps.h: the
// version is in the name), or nil.
func vipSetTable(spec *ebpf.CollectionSpec) *ebpf.MapSpec {
	if m := spec.Maps[DatapathMapVipSetsV2]; m != nil {
		return m
	}
	for name, m := range spec.Maps {
		if strings.HasPrefix(name, "vip_sets") {
			return m
		}
	}
	return nil
}

func configureConntrack(spec *ebpf.CollectionSpec, size uint32) error {
	ct := spec.Maps[ConntrackMapName(spec)]
	if ct == nil {
		return errors.New("configure datapath: no conntrack map in the object")
	}
	if ct.InnerMap != nil {
		ct.InnerMap.MaxEntries = size
		return nil
	}
	if sets := spec.Variables[DatapathVarCtSets]; sets != nil {
		// Per-CPU partitions of 4-way sets: size flows in all.
		n, err := ebpf.PossibleCPU()
		if err != nil {
			return fmt.Errorf("configure datapath: %w", err)
		}
		per := max(size/4/uint32(n), 1)
		if err := sets.Set(per); err != nil {
			return fmt.Errorf("configure datapath: set ct_sets: %w", err)
		}
		if mask := spec.Variables[DatapathVarCtSetMask]; mask != nil {
			m := uint32(0)
			if per&(per-1) == 0 {
				m = per - 1
			}
			if err := mask.Set(m); err != nil {
				return fmt.Errorf("configure datapath: set ct_set_mask: %w", err)
			}
		}
		if cpus := spec.Variables[DatapathVarCtCpus]; cpus != nil {
			if err := cpus.Set(uint32(n)); err != nil {
				return fmt.Errorf("configure datapath: set ct_cpus: %w", err)
			}
		}
		ct.MaxEntries = per * uint32(n)
		tags := spec.Maps[DatapathMapCtTagsV2]
		if tags == nil {
			tags = spec.Maps[ctTagsV1] // an older object's (benchmarks compare them)
		}
		if tags != nil {
			tags.MaxEntries = (ct.MaxEntries + 1) / 2 // two sets per element
		}
		return nil
	}
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

// Families returns every family the pipeline counts, in index order.
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
