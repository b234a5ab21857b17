package bgp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// restartMarker is a file whose presence tells a starting speaker that the
// previous one did not shut down: it stopped for a restart (Stop with
// StopRestart) or died. The running speaker refreshes its mtime every few
// seconds; StopShutdown removes it. A Start that finds it younger than the
// restart time is a graceful restart: the FIB routes of the previous
// process are still in place, so it sets the Restart State and Forwarding
// State bits (RFC 4724) and peers keep our routes until our End-of-RIB.
// It lives on tmpfs (/run), so a reboot, which loses the FIB, forgets it.
type restartMarker struct{ path string }

func newRestartMarker(dir string) restartMarker {
	return restartMarker{path: filepath.Join(dir, "bgp-restart")}
}

// recent reports whether the marker exists and is younger than maxAge.
func (m restartMarker) recent(maxAge time.Duration) bool {
	st, err := os.Stat(m.path)
	if err != nil {
		return false
	}
	age := time.Since(st.ModTime())
	return age >= -time.Minute && age < maxAge
}

// touch creates the marker or refreshes its mtime.
func (m restartMarker) touch() error {
	if err := os.MkdirAll(filepath.Dir(m.path), 0o755); err != nil {
		return fmt.Errorf("restart marker: %w", err)
	}
	now := time.Now()
	if err := os.Chtimes(m.path, now, now); err == nil {
		return nil
	}
	if err := os.WriteFile(m.path, []byte("aird bgp speaker running or restarting\n"), 0o644); err != nil {
		return fmt.Errorf("restart marker: %w", err)
	}
	return nil
}

// remove deletes the marker: the next Start is a cold start.
func (m restartMarker) remove() error {
	if err := os.Remove(m.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("restart marker: %w", err)
	}
	return nil
}

// pendingRestart lists, on a graceful restart, the peers Start cannot add
// yet (unnumbered ones: discovery finds their address later).
func pendingRestart(peers []peer, restarting bool) map[string]bool {
	pending := map[string]bool{}
	if !restarting {
		return pending
	}
	for _, p := range peers {
		if !p.resolved() {
			pending[p.key] = true
		}
	}
	return pending
}

// restartingPeer reports whether the peer with key, being added now, is
// one whose first session after a graceful restart is still to come: its
// OPEN then carries the Restart State and Forwarding State bits like those
// of the peers added at Start. Without them a helper (FRR) flushes the
// routes it kept for us when the session comes up, and reinstalls them as
// our UPDATEs arrive: a blink at every restart. Only the first add within
// the restart time counts; a peer added later (a reload, an address
// change) is a new session. Called with Speaker.mu held.
func (r *run) restartingPeer(key string) bool {
	if !r.restartPending[key] {
		return false
	}
	delete(r.restartPending, key)
	return time.Now().Before(r.restartEnds)
}
