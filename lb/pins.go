package lb

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/aird-net/aird/bpf"
)

// Tables are pinned in TableDir under the hex of their digest: the
// programmer holds no descriptor per table, opens one again to share it
// (also after a restart, when a new service's table equals an adopted
// one), and unpins it when its last service goes.

func (p *Programmer) pinPath(key digest) string {
	return filepath.Join(p.tabDir, hex.EncodeToString(key[:]))
}

// keepTable pins a table this change built (in the directory
// makeTableDir made); without a TableDir the handle stays open instead.
func (p *Programmer) keepTable(t *table, tx *txn) error {
	if p.tabDir == "" {
		return nil
	}
	path := p.pinPath(t.key)
	if err := t.t.Pin(path); err != nil {
		return err
	}
	t.pinned = true
	tx.onUndo(func() error { t.pinned = false; return removePin(path) })
	return nil
}

// makeTableDir makes the directory tables are pinned in, once for all the
// tables of a change.
func (p *Programmer) makeTableDir() error {
	if p.tabDir == "" {
		return nil
	}
	if err := os.MkdirAll(p.tabDir, 0o700); err != nil {
		return fmt.Errorf("table pins: %w", err)
	}
	return nil
}

// handle returns an open handle on t, opening its pin if need be; done
// closes a handle opened here.
func (p *Programmer) handle(t *table) (h *bpf.Table, done func(), err error) {
	if t.t != nil {
		return t.t, func() {}, nil
	}
	if !t.pinned {
		return nil, nil, fmt.Errorf("maglev table %d has no handle to install it with", t.id)
	}
	h, err = bpf.LoadPinnedTable(p.pinPath(t.key))
	if err != nil {
		return nil, nil, err
	}
	return h, func() { _ = h.Close() }, nil
}

// release drops a table no service uses: its handle and its pin (the
// kernel frees it once no vip id points at it).
func (p *Programmer) release(t *table) {
	if p.shared[t.key] == t {
		delete(p.shared, t.key)
	}
	if t.t != nil {
		_ = t.t.Close()
		t.t = nil
	}
	if t.pinned {
		if err := removePin(p.pinPath(t.key)); err != nil {
			p.log.Warn("lb: table pin not removed", "err", err)
		}
		t.pinned = false
	}
}

// dropHandles closes the handles of pinned tables after a change: a pin
// is enough to share them.
func (p *Programmer) dropHandles(builds []*build) {
	for _, b := range builds {
		if t := b.table; t != nil && t.pinned && t.t != nil {
			_ = t.t.Close()
			t.t = nil
		}
	}
}

// adoptPins reads the map ids of the pinned tables of an earlier process
// (on every CPU: 10,000 pins are 30,000 syscalls): those installed for a
// vip id (by map id) are returned by id; the others are stale and
// unpinned, as is what is not a table.
func (p *Programmer) adoptPins(installed map[uint64]bool) (map[uint64]digest, error) {
	out := map[uint64]digest{}
	if p.tabDir == "" {
		return out, nil
	}
	entries, err := os.ReadDir(p.tabDir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("table pins: %w", err)
	}
	pins := make([]pinnedTable, len(entries))
	parallel(p.workers, len(entries), func(i int) {
		pins[i] = p.readPin(entries[i].Name())
	})
	for _, t := range pins {
		switch {
		case t.err != nil:
			return nil, t.err
		case !t.table:
			p.log.Warn("lb: not a table pin, removed", "pin", t.path)
			_ = removePin(t.path)
		case installed[t.id]:
			out[t.id] = t.key
		default:
			if err := removePin(t.path); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// pinnedTable is what adoptPins found at one pin.
type pinnedTable struct {
	path  string
	key   digest
	id    uint64
	table bool // named by a digest, and a table of this layout
	err   error
}

func (p *Programmer) readPin(name string) pinnedTable {
	t := pinnedTable{path: filepath.Join(p.tabDir, name)}
	raw, err := hex.DecodeString(name)
	if err != nil || len(raw) != len(t.key) {
		return t
	}
	copy(t.key[:], raw)
	id, ok, err := bpf.PinnedTableID(t.path)
	t.id, t.table, t.err = uint64(id), ok, err
	return t
}

// parallel calls f(0) to f(n-1) on up to workers goroutines and returns
// when all have returned.
func parallel(workers, n int, f func(i int)) {
	workers = min(max(workers, 1), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}

func removePin(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	return nil
}
