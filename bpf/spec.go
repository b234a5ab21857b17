package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Names of the objects in the datapath collection that other packages use.
const (
	// ProgramXDP is the XDP entry program attached to every uplink.
	ProgramXDP = DatapathProgAirdXdp
	// MapFamilyStats is the per-CPU array of DatapathFamilyCounter indexed
	// by DatapathFamily.
	MapFamilyStats = DatapathMapFamilyStats
)

// LoadSpec returns a fresh CollectionSpec of the embedded datapath object.
// The caller may modify it before loading.
func LoadSpec() (*ebpf.CollectionSpec, error) {
	spec, err := LoadDatapath()
	if err != nil {
		return nil, fmt.Errorf("load datapath spec: %w", err)
	}
	return spec, nil
}

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
