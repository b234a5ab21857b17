package daemon

import (
	"testing"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/config"
)

// The limits --check-config enforces are the data plane's: internal/config
// cannot import bpf (airctl links it), so this keeps the two equal.
func TestConfigLimitsAreTheDataPlanes(t *testing.T) {
	spec, err := bpf.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name         string
		config, data int
	}{
		{"max ids", config.MaxLBIDs, bpf.MaxIDs},
		{"backends per service", config.MaxServiceBackends, bpf.MaglevMaxBackends},
		{"allow entries", config.MaxAllowEntries, int(spec.Maps[bpf.DatapathMapAllow].MaxEntries)},
		{"default max vips", config.DefaultLBMaxVIPs, bpf.DefaultMaxVIPs},
		{"default max backends", config.DefaultLBMaxBackends, bpf.DefaultMaxBackends},
	} {
		if c.config != c.data {
			t.Errorf("%s: the configuration allows %d, the data plane %d", c.name, c.config, c.data)
		}
	}
}
