package health

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"
)

// Event reports a target that changed state.
type Event struct {
	Key     string
	Healthy bool
	Reason  string // the last probe error when unhealthy
}

// Status is a target's current state.
type Status struct {
	Healthy bool `json:"healthy"`
	// Via is the probe's path, ViaTunnel or ViaDirect; Fallback says why
	// a check configured for the tunnel goes direct.
	Via       string    `json:"via,omitempty"`
	Fallback  string    `json:"fallback,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
	Checks    uint64    `json:"checks"`
	Failures  uint64    `json:"failures"`
}

// Options configure a Checker.
type Options struct {
	Dialer Dialer       // default SocketDialer
	Logger *slog.Logger // default slog.Default()
	// Events receives every state change. The checker never blocks on it
	// for long: the channel should be buffered and drained.
	Events chan<- Event
}

func (o *Options) validate() error {
	if o.Events == nil {
		return fmt.Errorf("health: an Events channel is required")
	}
	if o.Dialer == nil {
		o.Dialer = SocketDialer
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Checker runs one prober per target.
type Checker struct {
	opts Options
	ctx  context.Context

	mu      sync.Mutex
	probers map[string]*prober
}

// New returns a checker whose probers stop when ctx is done.
func New(ctx context.Context, o Options) (*Checker, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Checker{opts: o, ctx: ctx, probers: map[string]*prober{}}, nil
}

// Set makes the checked targets exactly specs (by key): new targets start
// healthy and are probed, removed ones stop, changed ones restart with
// their state kept. It validates every spec before changing anything.
func (c *Checker) Set(specs map[string]Spec) error {
	for k, s := range specs {
		if err := s.validate(); err != nil {
			return fmt.Errorf("health check %s: %w", k, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range c.probers {
		if s, ok := specs[k]; !ok || s != p.spec {
			p.stop()
			if !ok {
				delete(c.probers, k)
			}
		}
	}
	for k, s := range specs {
		if p, ok := c.probers[k]; ok && p.spec == s && !p.stopped() {
			continue
		}
		st := Status{Healthy: true, Since: time.Now()}
		if old, ok := c.probers[k]; ok {
			st = old.status()
		}
		p := newProber(c, k, s, st)
		c.probers[k] = p
		go p.run()
	}
	return nil
}

// Status returns the state of every target.
func (c *Checker) Status() map[string]Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Status, len(c.probers))
	for k, p := range c.probers {
		out[k] = p.status()
	}
	return out
}

// jitter spreads the first probe of each target over the interval, so a
// reload does not probe every backend in the same instant.
func jitter(key string, interval time.Duration) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(key))
	return time.Duration(h.Sum32()) % interval
}
