package daemon

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/logging"
	"github.com/aird-net/aird/internal/metrics"
	"github.com/aird-net/aird/internal/version"
)

// askingComponent asks the daemon's API backend for its status and
// configuration while it starts, as a client of the API does once the API
// component (the last) listens and before start returns.
type askingComponent struct {
	d      *Daemon
	status api.Status
	cfg    *config.Config
}

func (c *askingComponent) name() string       { return "asking" }
func (c *askingComponent) sections() []string { return nil }
func (c *askingComponent) close(stopIntent) error {
	return nil
}

func (c *askingComponent) apply(_, _ *config.Config) error {
	c.status, c.cfg = c.d.Status(), c.d.Config()
	return nil
}

// TestStatusWhileStarting: Status and Config answer while the components
// start, with the configuration being started (a lab run met a nil
// configuration here: the API listens before start had recorded it).
func TestStatusWhileStarting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aird.toml")
	if err := os.WriteFile(path, []byte("[node]\nname = \"starting-node\"\nuplinks = [\"eth0\"]\nunderlay = [\"2001:db8::1\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := (&config.Loader{}).Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log, err := logging.New(io.Discard, "warn", "text")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{log: log, dp: &datapathComponent{}, bgp: &bgpComponent{}, router: &routerComponent{}, state: api.StateStarting,
		metrics: metrics.New(version.Get())}
	ask := &askingComponent{d: d}
	d.comps = []component{ask}
	if err := d.start(file); err != nil {
		t.Fatalf("start: %v", err)
	}
	if ask.status.Node != "starting-node" || ask.status.State != api.StateStarting || ask.status.Config.File != path {
		t.Fatalf("Status while starting = node %q, state %q, file %q; want starting-node, %q, %s",
			ask.status.Node, ask.status.State, ask.status.Config.File, api.StateStarting, path)
	}
	if ask.cfg == nil || ask.cfg.Node.Name != "starting-node" {
		t.Fatalf("Config while starting = %+v, want the configuration being started", ask.cfg)
	}
}
