package lb

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// drainStore keeps the drained backends in a file in the state directory,
// so that a restarted aird (systemctl restart, an upgrade, a crash) keeps
// them drained, like the BGP drain marker: written on every drain and
// undrain, read at start. It lives where that marker does (/run/aird, kept
// by systemd across restarts only), so a stop and start or a reboot
// forgets the drains.
type drainStore struct{ dir string }

const drainFile = "lb-drained"

type drainFileBody struct {
	Drained []BackendRef `json:"drained"`
}

func (d drainStore) path() string { return filepath.Join(d.dir, drainFile) }

func (d drainStore) load() ([]BackendRef, error) {
	if d.dir == "" {
		return nil, nil
	}
	data, err := os.ReadFile(d.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("drained backends: %w", err)
	}
	var body drainFileBody
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("drained backends: %s: %w", d.path(), err)
	}
	return body.Drained, nil
}

// save replaces the file atomically (no file when nothing is drained).
func (d drainStore) save(drained map[BackendRef]bool) error {
	if d.dir == "" {
		return nil
	}
	if len(drained) == 0 {
		if err := os.Remove(d.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("drained backends: %w", err)
		}
		return nil
	}
	body := drainFileBody{Drained: make([]BackendRef, 0, len(drained))}
	for r := range drained {
		body.Drained = append(body.Drained, r)
	}
	slices.SortFunc(body.Drained, func(a, b BackendRef) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), a.Backend.Compare(b.Backend))
	})
	data, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		return fmt.Errorf("drained backends: %w", err)
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return fmt.Errorf("drained backends: %w", err)
	}
	tmp := d.path() + ".new"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("drained backends: %w", err)
	}
	if err := os.Rename(tmp, d.path()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("drained backends: %w", err)
	}
	return nil
}
