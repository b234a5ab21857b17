package bgp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// drainMarker is a file in the state directory that records a maintenance
// drain, so that a restarted speaker (systemctl restart, an upgrade, a
// crash) stays drained instead of announcing everything again: Drain
// writes it, Undrain removes it, and Start finding it comes up drained
// with nothing announced. Like the restart marker it lives on tmpfs
// (/run/aird, kept by systemd across restarts only), so a stop and start
// or a reboot forgets the drain.
type drainMarker struct{ path string }

func newDrainMarker(dir string) drainMarker {
	return drainMarker{path: filepath.Join(dir, "bgp-drained")}
}

func (m drainMarker) present() bool {
	_, err := os.Stat(m.path)
	return err == nil
}

func (m drainMarker) set() error {
	if err := os.MkdirAll(filepath.Dir(m.path), 0o755); err != nil {
		return fmt.Errorf("drain marker: %w", err)
	}
	if err := os.WriteFile(m.path, []byte("aird bgp speaker drained (airctl bgp undrain removes this)\n"), 0o644); err != nil {
		return fmt.Errorf("drain marker: %w", err)
	}
	return nil
}

func (m drainMarker) clear() error {
	if err := os.Remove(m.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("drain marker: %w", err)
	}
	return nil
}
