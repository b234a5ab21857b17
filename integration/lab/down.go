package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Down removes everything the lab created: its processes (by PID and
// start time), each node's data plane and endpoints (aird --cleanup), its
// namespaces, pins and directory. It goes on after errors and returns them
// all.
func (l *Lab) Down() error {
	l.mu.Lock()
	st := l.state
	l.mu.Unlock()
	return teardown(l.Dir, st)
}

// DownDir removes the lab whose directory is dir (state.json there), as
// Down does from the process that built it.
func DownDir(dir string) error {
	st, err := LoadState(dir)
	if err != nil {
		return err
	}
	return teardown(dir, st)
}

// LoadState reads a lab's state.json.
func LoadState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return st, fmt.Errorf("lab %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("lab %s: state.json: %w", dir, err)
	}
	return st, nil
}

// Orphaned reports whether a lab outlived the process that built it
// without being kept on purpose (an interrupted test or demo).
func (s State) Orphaned() bool {
	if s.Keep {
		return false
	}
	owner := &Proc{PID: s.Owner, Start: s.OwnerStart}
	return !owner.Alive()
}

func teardown(dir string, st State) error {
	var errs []error
	// aird first, without its stop (which would withdraw routes and wait):
	// the lab is going away.
	for _, p := range st.Procs {
		if p.Alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	for _, p := range st.Procs {
		_, _ = p.Wait(5 * 1e9)
	}
	for _, n := range st.Nodes {
		if _, err := os.Stat("/run/netns/" + n.NS); err != nil {
			continue
		}
		if st.Aird != "" {
			if err := cleanupNode(st.Aird, n); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.RemoveAll(n.PinPath); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range st.Namespaces {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		if _, err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
