package lab

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultRoot holds one directory per lab: its state, configurations,
// sockets and logs.
const DefaultRoot = "/run/aird-lab"

// KeepOnFailureEnv=1 keeps a lab that failed to come up, for a look.
const KeepOnFailureEnv = "AIRD_LAB_KEEP_ON_FAILURE"

// Options shape a lab. The zero value (with the binaries) is the rack of
// the package documentation.
type Options struct {
	// Aird and Airctl are the binaries every node runs (required).
	Aird, Airctl string
	// Root is the directory labs live under (DefaultRoot when empty).
	Root string
	// BackendNodes is the number of backend nodes (default 2), each with
	// EndpointsPerNode container endpoints (default 2).
	BackendNodes, EndpointsPerNode int
	// Keep marks a lab that outlives the process that built it (make demo
	// KEEP=1): `airdlab down` removes it.
	Keep bool
	// Log receives progress lines (nothing when nil).
	Log io.Writer
	// Created, when set, is called with the lab's directory as soon as
	// it exists (DownDir removes whatever was built by then).
	Created func(dir string)
}

func (o *Options) validate() error {
	if o.Aird == "" || o.Airctl == "" {
		return errors.New("lab: the aird and airctl binaries are required")
	}
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	if o.BackendNodes == 0 {
		o.BackendNodes = 2
	}
	if o.EndpointsPerNode == 0 {
		o.EndpointsPerNode = 2
	}
	if o.BackendNodes < 1 || o.BackendNodes > 8 || o.EndpointsPerNode < 1 || o.EndpointsPerNode > 16 {
		return fmt.Errorf("lab: %d backend nodes of %d endpoints: want 1-8 nodes of 1-16", o.BackendNodes, o.EndpointsPerNode)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// Lab is a running rack. Its exported fields are what tests and the demo
// look at; everything it created is in its State, saved in Dir, so Down
// (in this process or a later one) removes it all.
type Lab struct {
	ID      string
	Dir     string
	Client  string // the client namespace
	Tor1    *FRRTor
	Tor2    *BIRDTor
	LBs     []*Node
	Nodes   []*Node // the backend nodes
	Servers []*Endpoint

	opts  Options
	mu    sync.Mutex
	state State
}

// State is what a lab created, saved as state.json in its directory.
type State struct {
	ID         string      `json:"id"`
	Owner      int         `json:"owner"` // PID of the process that built it
	OwnerStart uint64      `json:"owner_start"`
	Keep       bool        `json:"keep"`
	Aird       string      `json:"aird"` // the binary that runs aird --cleanup
	Namespaces []string    `json:"namespaces"`
	Procs      []*Proc     `json:"procs"`
	Nodes      []NodeState `json:"nodes"`
}

// NodeState is what Down needs to clean up after a node's aird.
type NodeState struct {
	Name, NS, Config, StateDir, PinPath string
}

func (l *Lab) logf(format string, args ...any) {
	fmt.Fprintf(l.opts.Log, format+"\n", args...)
}

// ns names a namespace of this lab (at most 15 bytes with an ID of 6).
func (l *Lab) ns(role string) string { return "al" + l.ID + "-" + role }

// addNetns creates a namespace and records it.
func (l *Lab) addNetns(role string) (string, error) {
	name := l.ns(role)
	l.record(func(s *State) { s.Namespaces = append(s.Namespaces, name) })
	if err := runAll([]string{"ip", "netns", "add", name}, []string{"ip", "-n", name, "link", "set", "lo", "up"}); err != nil {
		return "", err
	}
	return name, nil
}

// record changes the state and saves it at once: whatever exists is
// recorded before (or right when) it is created.
func (l *Lab) record(change func(*State)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	change(&l.state)
	b, _ := json.MarshalIndent(&l.state, "", "  ")
	_ = os.WriteFile(filepath.Join(l.Dir, "state.json"), b, 0o644)
}

func (l *Lab) addProc(p *Proc) {
	l.record(func(s *State) { s.Procs = append(s.Procs, p) })
}

// start spawns a daemon of the lab with its log in the lab's directory.
func (l *Lab) start(name string, env []string, argv ...string) (*Proc, error) {
	p, err := spawn(name, filepath.Join(l.Dir, name+".log"), env, argv...)
	if err != nil {
		return nil, err
	}
	l.addProc(p)
	return p, nil
}

func newID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Up builds the rack and waits until it serves: BGP sessions established,
// both VIPs on both ToRs through both LB nodes, every backend healthy on
// both LB nodes. On error it removes what it built.
func Up(o Options) (l *Lab, err error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	l = &Lab{ID: newID(), opts: o}
	l.Dir = filepath.Join(o.Root, l.ID)
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	// FRR drops privileges: every parent must be traversable.
	_ = os.Chmod(o.Root, 0o755)
	l.state = State{ID: l.ID, Owner: os.Getpid(), Keep: o.Keep, Aird: o.Aird}
	l.state.OwnerStart, _ = startTime(os.Getpid())
	l.record(func(*State) {})
	if o.Created != nil {
		o.Created(l.Dir)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("lab %s: %w", l.ID, err)
			if os.Getenv(KeepOnFailureEnv) == "1" {
				l.record(func(s *State) { s.Keep = true })
				l.logf("lab %s: kept for a look (%s=1); remove it with airdlab down", l.ID, KeepOnFailureEnv)
				l = nil
				return
			}
			if derr := l.Down(); derr != nil {
				err = errors.Join(err, derr)
			}
			l = nil
		}
	}()
	began := time.Now()
	steps := []struct {
		what string
		do   func() error
	}{
		{"network namespaces and links", l.wire},
		{"ToRs: FRR (tor1) and BIRD (tor2)", l.startTors},
		{"backend nodes and their endpoints", l.startBackends},
		{"load-balancer nodes", l.startLBs},
		{"BGP sessions, ECMP routes, healthy backends", l.waitServing},
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.do(); err != nil {
			return l, fmt.Errorf("%s: %w", s.what, err)
		}
		l.logf("lab %s: %s (%.1fs)", l.ID, s.what, time.Since(t0).Seconds())
	}
	l.logf("lab %s: up in %.1fs", l.ID, time.Since(began).Seconds())
	return l, nil
}
