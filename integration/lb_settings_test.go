package integration

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// pinnedSettings reads the pipeline settings of a running aird from its
// pinned settings map.
func pinnedSettings(t *testing.T, pin string) bpf.DatapathPipelineSettings {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", bpf.DatapathMapSettings), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var v bpf.DatapathPipelineSettings
	if err := m.Lookup(uint32(0), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFloodThresholdFollowsReload: lb.flood-threshold reaches the data
// plane at start (its default, 100,000 new flows per second on one CPU)
// and on reload (7, then 0: no flood accounting); the conntrack idle time
// and the flood window stay set (60 s and 1 s in kernel ticks).
func TestFloodThresholdFollowsReload(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.start()
	first := pinnedSettings(t, n.pinPath)
	if first.FloodRate != 100_000 || first.FloodWindow == 0 || first.CtIdle < 59*first.FloodWindow || first.CtIdle > 61*first.FloodWindow {
		t.Fatalf("at start: flood rate %d, window %d ticks, conntrack idle %d ticks; want 100000, a second, 60 seconds",
			first.FloodRate, first.FloodWindow, first.CtIdle)
	}
	for gen, threshold := range []uint32{7, 0} {
		n.writeConfig(n.config("info", "uplink0") + fmt.Sprintf("\n[lb]\nflood-threshold = %d\n", threshold))
		if out, errs, code := n.airctl("reload"); code != 0 {
			t.Fatalf("reload with lb.flood-threshold = %d: exit %d: %s%s", threshold, code, out, errs)
		}
		if st := n.status(); st.Config.Generation != gen+2 {
			t.Fatalf("generation %d after reload %d", st.Config.Generation, gen+1)
		}
		got := pinnedSettings(t, n.pinPath)
		if got.FloodRate != threshold || got.FloodWindow != first.FloodWindow || got.CtIdle != first.CtIdle || got.HashSeed != first.HashSeed {
			t.Fatalf("after reload with lb.flood-threshold = %d: %+v (at start %+v)", threshold, got, first)
		}
	}
}
