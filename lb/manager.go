package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/lb/health"
)

// Options configure a Manager.
type Options struct {
	Logger *slog.Logger
	// Dialer carries health probes; nil means health.SocketDialer.
	Dialer health.Dialer
	// OnServing is called with the sorted set of serving VIPs whenever it
	// changes (from the Manager's own goroutine; it must not block long).
	OnServing func(vips []netip.Addr)
	// Dataplane, if set, is kept in step with the services and the health
	// of their backends (a *Programmer writing the XDP maps).
	Dataplane Dataplane
}

// Dataplane is what programs the forwarding of services.
type Dataplane interface {
	Sync(services []config.Service, usable func(service string, backend netip.Addr) bool) error
}

func (o *Options) validate() error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnServing == nil {
		return errors.New("lb: OnServing is required")
	}
	return nil
}

// Manager follows the [[services]] of the configuration.
type Manager struct {
	opts   Options
	checks *health.Checker
	events chan health.Event
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	services  []config.Service
	drained   map[string]bool // backend keys drained at run time (airctl lb drain)
	serving   []netip.Addr
	probePath ProbePath         // see probe.go
	fallbacks map[string]string // service -> why its checks go direct (logged once)
}

// New starts a manager with no services.
func New(ctx context.Context, o Options) (*Manager, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &Manager{opts: o, events: make(chan health.Event, 256), cancel: cancel, done: make(chan struct{}), drained: map[string]bool{}}
	checks, err := health.New(ctx, health.Options{Dialer: o.Dialer, Logger: o.Logger, Events: m.events})
	if err != nil {
		cancel()
		return nil, err
	}
	m.checks = checks
	go m.loop(ctx)
	return m, nil
}

// Apply makes the manager follow services. Health state of backends that
// stay is kept; new backends start healthy (see package health).
func (m *Manager) Apply(services []config.Service) error {
	specs := m.probeSpecs(services)
	if err := m.checks.Set(specs); err != nil {
		return fmt.Errorf("lb: %w", err)
	}
	m.mu.Lock()
	m.services = slices.Clone(services)
	for k := range m.drained {
		if _, ok := specs[k]; !ok {
			delete(m.drained, k)
		}
	}
	m.mu.Unlock()
	return m.recompute()
}

// BackendKey names one backend of one service: "web/fd00::1".
func BackendKey(service string, backend netip.Addr) string {
	return service + "/" + backend.String()
}

func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.events:
			_ = m.recompute() // logged; the next event or reload retries
		}
	}
}

// recompute programs the data plane, derives the serving VIPs and reports
// a change.
func (m *Manager) recompute() error {
	st := m.checks.Status()
	m.mu.Lock()
	usable := func(service string, b netip.Addr) bool {
		k := BackendKey(service, b)
		return !m.drained[k] && st[k].Healthy
	}
	var err error
	if m.opts.Dataplane != nil {
		if err = m.opts.Dataplane.Sync(m.services, usable); err != nil {
			m.opts.Logger.Error("lb: programming the data plane failed", "err", err)
		}
	}
	set := map[netip.Addr]bool{}
	for _, s := range m.services {
		for _, b := range s.Backends {
			if b.Weight > 0 && usable(s.Name, b.Address) {
				set[s.VIP] = true
			}
		}
	}
	serving := make([]netip.Addr, 0, len(set))
	for a := range set {
		serving = append(serving, a)
	}
	slices.SortFunc(serving, func(a, b netip.Addr) int { return a.Compare(b) })
	changed := !slices.Equal(serving, m.serving)
	m.serving = serving
	m.mu.Unlock()
	if changed {
		m.opts.Logger.Info("serving VIPs changed", "vips", serving)
		m.opts.OnServing(serving)
	}
	return err
}

// Serving returns the VIPs that can serve now.
func (m *Manager) Serving() []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.serving)
}

// SetDrained drains (or undrains) one backend at run time: it takes no new
// flows, established ones keep it. The drain lasts until undone or until the
// backend leaves the configuration.
func (m *Manager) SetDrained(service string, backend netip.Addr, drained bool) error {
	k := BackendKey(service, backend)
	m.mu.Lock()
	found := false
	for _, s := range m.services {
		if s.Name == service && slices.ContainsFunc(s.Backends, func(b config.Backend) bool { return b.Address == backend }) {
			found = true
		}
	}
	if found {
		if drained {
			m.drained[k] = true
		} else {
			delete(m.drained, k)
		}
	}
	m.mu.Unlock()
	if !found {
		return fmt.Errorf("lb: no backend %s in service %q", backend, service)
	}
	return m.recompute()
}

// Close stops health checking.
func (m *Manager) Close() {
	m.cancel()
	<-m.done
}
