package integration

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// TestLBRestartFromSnapshot: aird keeps a snapshot of a large
// configuration (1 MiB or more) in its state directory; a restart with the
// file unchanged takes the configuration from it instead of parsing the
// file, and the data plane then holds exactly the configured services. A
// file changed while aird was down (a service removed, one moved to
// another port, a backend replaced) is parsed, the maps end with exactly
// its services and the new backend in its service's table, and the next
// restart takes the new snapshot; a reload that changes the file has the
// snapshot made again as aird stops, and the restart after it takes it.
// A file no longer worth a snapshot has the earlier one removed.
func TestLBRestartFromSnapshot(t *testing.T) {
	sc := testutil.LBScale{VIPs: 700, PerVIP: 100, Pool: 2000, Seed: 3}
	n := newNode(t)
	head := n.config("info", "uplink0")
	body := head + sc.TOML(nil)
	if len(body) < 1<<20 {
		t.Fatalf("the configuration is %d bytes: too small for a snapshot", len(body))
	}
	n.writeConfig(body)
	n.startWithin(5 * time.Minute)
	snap := filepath.Join(n.stateDir(), "config.snapshot")
	waitSnapshot := func(after time.Time) {
		t.Helper()
		if !testutil.WaitFor(30*time.Second, func() bool {
			fi, err := os.Stat(snap)
			return err == nil && !fi.ModTime().Before(after) && fi.Mode().Perm() == 0o600
		}) {
			t.Fatal("timed out waiting for the configuration snapshot (mode 0600)")
		}
	}
	waitSnapshot(time.Time{})
	want := map[string]bool{}
	for i := range sc.VIPs {
		want[fmt.Sprintf("%s/80", sc.VIP(i))] = true
	}
	const fromSnap = "configuration taken from its snapshot"
	restart := func(what string, snapshot bool) {
		t.Helper()
		before := strings.Count(n.log.String(), fromSnap)
		n.stopForRestart()
		n.startWithin(5 * time.Minute)
		if got := strings.Count(n.log.String(), fromSnap) - before; got != map[bool]int{true: 1}[snapshot] {
			t.Fatalf("%s: taken from the snapshot %d times, want %v", what, got, snapshot)
		}
		if got := pinnedServices(t, n.pinPath); !equalSets(got, want) {
			t.Fatalf("%s: the data plane holds %d services, want the %d configured (%s)", what, len(got), len(want), setDiff(got, want))
		}
	}
	restart("unchanged", true)

	// Changed while aird is down.
	n.stopForRestart()
	written := time.Now()
	changed := strings.Replace(body, fmt.Sprintf("vip = %q\nport = 80", sc.VIP(0)), fmt.Sprintf("vip = %q\nport = 81", sc.VIP(0)), 1)
	last := strings.LastIndex(changed, "\n[[services]]")
	changed = changed[:last+1]
	s1 := strings.Index(changed, `name = "s1"`)
	at := s1 + strings.Index(changed[s1:], `backends = ["`) + len(`backends = ["`)
	old := changed[at : at+strings.IndexByte(changed[at:], '"')]
	changed = changed[:at] + "fd00:d::1" + changed[at+len(old):]
	if changed == body || !strings.Contains(changed, "port = 81") {
		t.Fatal("the configuration did not change")
	}
	n.writeConfig(changed)
	delete(want, fmt.Sprintf("%s/80", sc.VIP(0)))
	delete(want, fmt.Sprintf("%s/80", sc.VIP(sc.VIPs-1)))
	want[fmt.Sprintf("%s/81", sc.VIP(0))] = true
	n.startWithin(5 * time.Minute)
	if strings.Count(n.log.String(), fromSnap) != 1 {
		t.Fatal("the changed file was taken from the snapshot of the earlier one")
	}
	if got := pinnedServices(t, n.pinPath); !equalSets(got, want) {
		t.Fatalf("changed: the data plane holds %d services, want the %d configured (%s)", len(got), len(want), setDiff(got, want))
	}
	ids := pinnedBackendIDs(t, n.pinPath)
	id, ok := ids["fd00:d::1"]
	if !ok {
		t.Fatal("the new backend has no backend id")
	}
	if tab := pinnedTable(t, n.pinPath, sc.VIP(1).String(), 80); tab[id] == 0 || len(tab) != sc.PerVIP {
		t.Fatalf("service s1's table: new backend %d slots, %d backends", tab[id], len(tab))
	}
	if oldID, ok := ids[old]; ok && pinnedTable(t, n.pinPath, sc.VIP(1).String(), 80)[oldID] != 0 {
		t.Fatalf("service s1's table keeps the replaced backend %s", old)
	}
	waitSnapshot(written)
	restart("after the change", true)

	// A reload changes the file: the snapshot is made again as aird stops
	// (the running configuration, not the file's later content).
	reloaded := strings.Replace(changed, fmt.Sprintf("vip = %q\nport = 80", sc.VIP(2)), fmt.Sprintf("vip = %q\nport = 82", sc.VIP(2)), 1)
	n.writeConfig(reloaded)
	if _, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("airctl reload: %s", errs)
	}
	delete(want, fmt.Sprintf("%s/80", sc.VIP(2)))
	want[fmt.Sprintf("%s/82", sc.VIP(2))] = true
	restart("after a reload", true)

	// A file no longer worth a snapshot (a few services) while aird was
	// down: once it has loaded, the snapshot of the earlier one is gone,
	// and no temporary file of a write is left beside it.
	n.stopForRestart()
	small := testutil.LBScale{VIPs: 3, PerVIP: 2, Pool: 4, Seed: 3}
	n.writeConfig(head + small.TOML(nil))
	want = map[string]bool{}
	for i := range small.VIPs {
		want[fmt.Sprintf("%s/80", small.VIP(i))] = true
	}
	n.startWithin(time.Minute)
	if _, err := os.Stat(snap); !os.IsNotExist(err) {
		t.Fatalf("the snapshot of the earlier file is still there (%v)", err)
	}
	if left, _ := filepath.Glob(snap + ".*"); len(left) > 0 {
		t.Fatalf("left beside the snapshot: %v", left)
	}
	restart("a small file", false)
}

// pinnedServices returns the services in the pinned vips map ("vip/port";
// the address and fragments-only entries left out).
func pinnedServices(t *testing.T, pin string) map[string]bool {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", bpf.DatapathMapVips), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := map[string]bool{}
	err = bpf.ReadHash(m, func(k *bpf.DatapathVipKey, v *bpf.DatapathVipValue) {
		if k.Proto != 0 && v.Flags&uint32(bpf.DatapathVipFlagsVIP_F_FRAGMENTS_ONLY) == 0 {
			out[fmt.Sprintf("%s/%d", netip.AddrFrom16(k.Addr).Unmap(), bpf.Ntohs(k.Port))] = true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// setDiff names a few keys in one set and not the other.
func setDiff(got, want map[string]bool) string {
	var extra, missing []string
	for k := range got {
		if !want[k] && len(extra) < 3 {
			extra = append(extra, k)
		}
	}
	for k := range want {
		if !got[k] && len(missing) < 3 {
			missing = append(missing, k)
		}
	}
	return fmt.Sprintf("extra %v, missing %v", extra, missing)
}
