package health

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"
)

// Event reports a target that changed state, or whose state after starting
// unknown was decided (its first success, or fall failures).
type Event struct {
	Spec    Spec
	Healthy bool
	Reason  string // the last probe error when unhealthy
}

// Status is a target's current state.
type Status struct {
	Healthy bool `json:"healthy"`
	// Known is false for a target added unknown (Checker.Update) until
	// its first success or fall consecutive failures: Healthy says
	// nothing yet.
	Known bool `json:"known"`
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

// Checker runs one prober per target. A target is its Spec: equal specs
// (the same backend address, port and check, as direct checks of one
// backend in several services are) are one target, probed once.
type Checker struct {
	opts Options
	ctx  context.Context

	mu      sync.Mutex
	probers map[Spec]*prober
}

// New returns a checker whose probers stop when ctx is done.
func New(ctx context.Context, o Options) (*Checker, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Checker{opts: o, ctx: ctx, probers: map[Spec]*prober{}}, nil
}

// Update starts probing add and stops probing remove. New targets start
// healthy, or unknown (Status.Known false until their first success or
// `fall` consecutive failures) when
// unknown is set; a target both removed and added keeps its state. It
// validates every added spec before changing anything.
func (c *Checker) Update(add, remove []Spec, unknown bool) error {
	for _, s := range add {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("health check of %s: %w", s.Dest, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	adding := make(map[Spec]bool, len(add))
	for _, s := range add {
		adding[s] = true
	}
	for _, s := range remove {
		if p, ok := c.probers[s]; ok && !adding[s] {
			p.stop()
			delete(c.probers, s)
		}
	}
	for _, s := range add {
		if _, ok := c.probers[s]; ok {
			continue
		}
		st := Status{Healthy: true, Known: true, Since: time.Now()}
		if unknown {
			st = Status{Since: time.Now()}
		}
		p := newProber(c, s, st)
		c.probers[s] = p
		go p.run()
	}
	return nil
}

// Status returns the state of target s.
func (c *Checker) Status(s Spec) (Status, bool) {
	c.mu.Lock()
	p, ok := c.probers[s]
	c.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	return p.status(), true
}

// Len returns the number of targets.
func (c *Checker) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.probers)
}

// jitter spreads the first probe of each target over the interval, so a
// reload does not probe every backend in the same instant.
func jitter(s Spec, interval time.Duration) time.Duration {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%d", s.Dest, s.Source, s.Mark)
	return time.Duration(h.Sum32()) % interval
}
