package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/version"
)

// The configuration snapshot (config.EncodeSnapshot) lets a restart with
// an unchanged file skip parsing it: aird keeps one in its state
// directory after a start that parsed a large file, and the next start
// takes its configuration from it when the file's content, the build of
// aird and the host name are unchanged. One that does not stand for the
// configuration in force (the file changed, another build, another host)
// is replaced, or removed when that configuration is not worth one: at a
// start once the file has loaded, at a stop when a reload changed it.

// snapshotName is the snapshot's file in the state directory.
const snapshotName = "config.snapshot"

// maxSnapshotSize bounds what is read back (a snapshot is a little larger
// than the file it stands for).
const maxSnapshotSize = 4 * config.MaxFileSize

// configSnapshot is the snapshot the start reads and the one it leaves.
type configSnapshot struct {
	path    string // "" when disabled
	program string // the build id
	saved   string // the Digest of the configuration the snapshot on disk holds ("": none known)
	host    string // the host name when the configuration in force was loaded
	// hostName reads the host name (nil: os.Hostname; tests rename the host).
	hostName func() string
	written  chan struct{} // closed when the write begun by load is done
	werr     error         // its error
}

func newConfigSnapshot() *configSnapshot {
	s := &configSnapshot{program: version.BuildID()}
	if s.program != "" {
		s.path = filepath.Join(stateDir(), snapshotName)
	}
	return s
}

// load loads the configuration at path, from the snapshot when it stands
// for the file, and keeps a snapshot of what it parsed for write.
func (s *configSnapshot) load(loader *config.Loader, path string) (*config.File, bool, error) {
	s.host = s.hostname()
	s.removeTemporaries()
	f, fromSnap, err := loader.LoadSnapshot(path, s.read(), s.program)
	if err != nil { // the snapshot may stand for the file as it was: kept
		return nil, false, err
	}
	if fromSnap {
		s.saved = f.Digest
		return f, true, nil
	}
	// Encoded now: the start changes the configuration (allocated VIPs).
	// Written while the start goes on, so that its buffer is not held
	// through the start's peak; the snapshot of a valid file is valid
	// whether or not the start succeeds.
	snap, err := config.EncodeSnapshot(f, s.program)
	if err != nil { // a field the encoding cannot carry: a bug, not the input
		slog.Warn("configuration snapshot not made; the next start parses the file", "err", err)
	}
	// The parse defaulted node.name from the host name and the snapshot is
	// keyed by the host name when encoded: one renamed in between (a boot
	// that names the host while aird starts) would key a snapshot of the
	// old name by the new one. Read before the load and after the key, the
	// same name stands for the parse's.
	if s.hostname() != s.host {
		snap = nil
	}
	if err == nil && snap != nil {
		s.startWrite(snap, f.Digest)
	} else {
		s.werr = s.discard()
	}
	return f, false, nil
}

// startWrite writes snap, the snapshot of the configuration of digest, in
// the background, in place of the one on disk (which does not stand for
// it, or has been read); stop waits for it. A write that fails removes
// the one on disk.
func (s *configSnapshot) startWrite(snap []byte, digest string) {
	s.written = make(chan struct{})
	go func() {
		defer close(s.written)
		if s.werr = writeFileAtomic(s.path, snap); s.werr == nil {
			s.saved = digest
		} else if derr := s.discard(); derr != nil {
			s.werr = fmt.Errorf("%w (and %w)", s.werr, derr)
		}
	}()
}

// discard removes the snapshot on disk, which does not stand for the
// configuration in force (none is saved then).
func (s *configSnapshot) discard() error {
	s.saved = ""
	if s.path == "" {
		return nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the stale configuration snapshot: %w", err)
	}
	return nil
}

// removeTemporaries removes the temporary files of writes an earlier
// process left (killed between writing one and renaming it). Called at the
// start, before this process writes any.
func (s *configSnapshot) removeTemporaries() {
	if s.path == "" {
		return
	}
	dir, base := filepath.Split(s.path)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if isTemporary(base, e.Name()) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// isTemporary says whether name is one of writeFileAtomic's temporary
// files for base: base, a dot, the digits os.CreateTemp puts for the *,
// ".tmp"; or base + ".tmp", the fixed name builds before it used (a
// full-size copy of the configuration, passwords included). Nothing else
// in the directory matches, whatever characters its path holds.
func isTemporary(base, name string) bool {
	if name == base+".tmp" {
		return true
	}
	mid, ok := strings.CutPrefix(name, base+".")
	if !ok {
		return false
	}
	mid, ok = strings.CutSuffix(mid, ".tmp")
	return ok && mid != "" && strings.Trim(mid, "0123456789") == ""
}

// read returns the snapshot on disk, nil when there is none to read.
func (s *configSnapshot) read() []byte {
	if s.path == "" {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxSnapshotSize {
		return nil
	}
	// Sized from the stat: io.ReadAll would grow the buffer by doubling,
	// zeroing each copy (0.2 s of CPU for a 19 MB snapshot).
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil
	}
	return b
}

// report logs, once the write load began is done, why it failed.
func (s *configSnapshot) report(log *slog.Logger) {
	if s.written == nil {
		if s.werr != nil {
			log.Warn("configuration snapshot not removed", "err", s.werr)
		}
		return
	}
	go func() {
		s.wait()
		if s.werr != nil {
			log.Warn("configuration snapshot not saved; the next start parses the file", "err", s.werr)
		}
	}()
}

// saveRunning saves, as aird stops, a snapshot of the configuration in
// force when a reload changed it since the snapshot on disk was made, so
// that the next start need not parse it. f is as the daemon holds it: the
// VIPs it allocated from pools are taken out again (Service.VIPAllocated
// marks them; nothing else of a loaded configuration is changed). A host
// name changed since the load (a default of node.name) makes none: the
// snapshot is keyed by the host name when it is made. When it makes none
// for a configuration other than the one saved, the one on disk, which
// stands for an earlier configuration, is removed.
func (s *configSnapshot) saveRunning(f *config.File, log *slog.Logger) {
	s.wait()
	if s.path == "" || f == nil || f.Digest == s.saved {
		return
	}
	if s.hostname() != s.host {
		s.discardLogged(log)
		return
	}
	cfg := *f.Config
	cfg.Services = slices.Clone(cfg.Services)
	for i := range cfg.Services {
		if sv := &cfg.Services[i]; sv.VIPAllocated {
			sv.VIP, sv.VIPAllocated = netip.Addr{}, false
		}
	}
	loaded := *f
	loaded.Config = &cfg
	snap, err := config.EncodeSnapshot(&loaded, s.program)
	if err != nil {
		log.Warn("configuration snapshot not made; the next start parses the file", "err", err)
	}
	if err != nil || snap == nil {
		s.discardLogged(log)
		return
	}
	if err := writeFileAtomic(s.path, snap); err != nil {
		log.Warn("configuration snapshot not saved; the next start parses the file", "err", err)
		s.discardLogged(log)
		return
	}
	s.saved = f.Digest
}

// discardLogged is discard, logging a failure.
func (s *configSnapshot) discardLogged(log *slog.Logger) {
	if err := s.discard(); err != nil {
		log.Warn("configuration snapshot not removed", "err", err)
	}
}

// wait returns once a write begun is done.
func (s *configSnapshot) wait() {
	if s.written != nil {
		<-s.written
	}
}

// tempPattern names writeFileAtomic's temporary files after the file
// they replace (os.CreateTemp puts a random string for the *).
const tempPattern = ".*.tmp"

// writeFileAtomic replaces path with data (mode 0600: a configuration
// can hold BGP passwords) through a temporary file of its own in the same
// directory, written and synced before it is renamed over path; the
// temporary file is removed when any step fails.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+tempPattern)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err == nil {
			return
		}
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("%w (and %w)", err, rerr)
		}
	}()
	err = f.Chmod(0o600) // CreateTemp's mode, whatever the umask
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename is durable once the directory is synced; without that, a
	// power cut can lose the new snapshot (the next start parses).
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// hostname is the host name now.
func (s *configSnapshot) hostname() string {
	if s.hostName != nil {
		return s.hostName()
	}
	return hostname()
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
