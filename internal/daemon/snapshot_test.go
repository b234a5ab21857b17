package daemon

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/testutil"
)

// TestSnapshotAtStopIsTheLoadedConfiguration: the snapshot made as aird
// stops (after a reload) holds the configuration as loaded, not as the
// daemon changed it: a VIP allocated from a pool is taken out again, so
// the next start allocates (or finds) it as after a parse. A host name
// changed since the load makes no snapshot, nor does one already saved.
func TestSnapshotAtStopIsTheLoadedConfiguration(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aird.toml")
	sc := testutil.LBScale{VIPs: 700, PerVIP: 100, Pool: 2000, Seed: 1}
	body := "[node]\nname = \"snap\"\nunderlay = [\"fd00:100:1::1\"]\n\n" + sc.TOML(nil) +
		"\n[[services]]\nname = \"pooled\"\nvip-pool = \"services\"\nport = 80\nhealth-check = { type = \"none\" }\nbackends = [\"fd00:b::1\"]\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded := func() *config.File {
		t.Helper()
		f, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	want := loaded()
	running := loaded()
	last := &running.Services[len(running.Services)-1]
	if last.Name != "pooled" || last.VIP.IsValid() {
		t.Fatalf("last service %q, VIP %s", last.Name, last.VIP)
	}
	last.VIP, last.VIPAllocated = netip.MustParseAddr("fd00:300::ffff"), true // as the ipam component does

	s := &configSnapshot{path: filepath.Join(dir, "state", snapshotName), program: "build-1", host: "another-host"}
	s.saveRunning(running, slog.Default())
	if _, err := os.Stat(s.path); !os.IsNotExist(err) {
		t.Fatalf("a snapshot was made under another host name: %v", err)
	}
	s.host = hostname()
	s.saveRunning(running, slog.Default())
	fi, err := os.Stat(s.path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot: %v", err)
	}
	f, fromSnap, err := new(config.Loader).LoadSnapshot(path, s.read(), "build-1")
	if err != nil || !fromSnap {
		t.Fatalf("the snapshot was not used: %v", err)
	}
	if !reflect.DeepEqual(f.Config, want.Config) {
		t.Fatalf("the snapshot differs from the file's configuration: last service %+v", f.Services[len(f.Services)-1])
	}
	// Saved: stopping again does not write it again.
	if err := os.Remove(s.path); err != nil {
		t.Fatal(err)
	}
	s.saveRunning(running, slog.Default())
	if _, err := os.Stat(s.path); !os.IsNotExist(err) {
		t.Fatalf("the snapshot was written again: %v", err)
	}
}
