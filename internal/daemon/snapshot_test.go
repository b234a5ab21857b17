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

// A snapshot that does not stand for the file is removed once a file not
// worth a snapshot has loaded; a file that does not load leaves it, as it
// may stand for the file as it was. Temporary files an earlier process
// left are removed at the start.
func TestStaleSnapshotRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aird.toml")
	s := &configSnapshot{path: filepath.Join(dir, "state", snapshotName), program: "build-1"}
	stale := []byte("AIRDCS01 a snapshot of another content, build or host")
	if err := writeFileAtomic(s.path, stale); err != nil {
		t.Fatal(err)
	}
	left := s.path + ".123" + tempPattern[2:]
	if err := os.WriteFile(left, stale, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(path, []byte("[node]\nname = \"snap\"\nunderlay = [\"fd00:100:1::1\"]\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.load(new(config.Loader), path); err == nil {
		t.Fatal("a file with an unknown key loaded")
	}
	if got, err := os.ReadFile(s.path); err != nil || string(got) != string(stale) {
		t.Fatalf("the snapshot after a file that does not load: %q, %v", got, err)
	}

	if err := os.WriteFile(path, mustReadFile(t, "../config/testdata/good/03-services.toml"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, fromSnap, err := s.load(new(config.Loader), path)
	if err != nil || fromSnap {
		t.Fatalf("load: from the snapshot %v, %v", fromSnap, err)
	}
	s.wait()
	for _, p := range []string{s.path, left} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
}

// A snapshot saved at a start is removed as aird stops when a reload made
// the configuration in force one not worth a snapshot.
func TestSnapshotRemovedAtStopWhenNoLongerWorthIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aird.toml")
	sc := testutil.LBScale{VIPs: 700, PerVIP: 100, Pool: 2000, Seed: 1}
	if err := os.WriteFile(path, []byte("[node]\nname = \"snap\"\nunderlay = [\"fd00:100:1::1\"]\n\n"+sc.TOML(nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &configSnapshot{path: filepath.Join(dir, "state", snapshotName), program: "build-1"}
	loader := new(config.Loader)
	if _, _, err := s.load(loader, path); err != nil {
		t.Fatal(err)
	}
	s.wait()
	if s.werr != nil || s.saved == "" {
		t.Fatalf("no snapshot saved: %v", s.werr)
	}
	if _, err := os.Stat(s.path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, mustReadFile(t, "../config/testdata/good/03-services.toml"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloaded, err := loader.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s.saveRunning(reloaded, slog.Default())
	if _, err := os.Stat(s.path); !os.IsNotExist(err) {
		t.Fatalf("the snapshot of the earlier configuration is still there (%v)", err)
	}
}

// writeFileAtomic writes through a temporary file of its own: whatever
// holds another writer's name (here a directory at the fixed name
// "config.snapshot.tmp" earlier builds used) does not stop it; the file is
// mode 0600 and no temporary file is left, whether the write succeeds or
// fails.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, snapshotName)
	if err := os.Mkdir(path+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte("one")); err != nil {
		t.Fatalf("write: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("written file: %v, %v", fi, err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "one" {
		t.Fatalf("content %q, %v", got, err)
	}
	temporaries := func() []string {
		m, err := filepath.Glob(path + tempPattern)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := temporaries(); len(m) != 0 {
		t.Errorf("temporary files left after a write: %v", m)
	}

	// The rename fails (a non-empty directory in the way): an error, and
	// the temporary file is gone.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(blocked, []byte("two")); err == nil {
		t.Fatal("a write over a non-empty directory succeeded")
	}
	if m, _ := filepath.Glob(blocked + tempPattern); len(m) != 0 {
		t.Errorf("temporary files left after a failed write: %v", m)
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A host renamed while a start parses (node.name defaults to the host
// name, the snapshot is keyed by it when encoded) makes no snapshot; a
// host that keeps its name makes one.
func TestSnapshotNotMadeWhenTheHostIsRenamedDuringTheLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aird.toml")
	sc := testutil.LBScale{VIPs: 700, PerVIP: 100, Pool: 2000, Seed: 1}
	body := "[node]\nunderlay = [\"fd00:100:1::1\"]\n\n" + sc.TOML(nil)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		names []string // what the host name reads, call by call
		want  bool
	}{
		{"renamed", []string{"localhost", "node-17"}, false},
		{"kept", []string{"node-17", "node-17"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			s := &configSnapshot{path: filepath.Join(t.TempDir(), snapshotName), program: "build-1",
				hostName: func() string {
					n := tc.names[min(calls, len(tc.names)-1)]
					calls++
					return n
				}}
			if _, fromSnap, err := s.load(new(config.Loader), path); err != nil || fromSnap {
				t.Fatalf("load: from the snapshot %v, %v", fromSnap, err)
			}
			s.wait()
			_, err := os.Stat(s.path)
			if made := err == nil; made != tc.want {
				t.Fatalf("snapshot made: %v, want %v (%v)", made, tc.want, err)
			}
		})
	}
}

// The start removes the temporary files of writes a killed process left,
// this build's and the fixed name of earlier builds, and nothing else,
// whatever characters the state directory's path holds.
func TestTemporariesRemovedAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state [*?]")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &configSnapshot{path: filepath.Join(dir, snapshotName), program: "build-1"}
	gone := []string{snapshotName + ".123456789.tmp", snapshotName + ".tmp"}
	kept := []string{snapshotName, snapshotName + ".bak.tmp", snapshotName + "..tmp", snapshotName + ".12a.tmp",
		"other.123.tmp", snapshotName + ".123.tmp.orig"}
	for _, n := range append(append([]string(nil), gone...), kept...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.removeTemporaries()
	for _, n := range gone {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", n, err)
		}
	}
	for _, n := range kept {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was removed: %v", n, err)
		}
	}
}
