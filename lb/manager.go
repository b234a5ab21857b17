package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

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
	// StateDir keeps the drained backends across a restart
	// (StateDir/lb-drained); "" keeps them in memory only.
	StateDir string
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

// retryInterval is how soon a health change the data plane refused is
// programmed again.
const retryInterval = 5 * time.Second

// Manager follows the services of the configuration: it programs the data
// plane (through its Dataplane, with ids from its IDs), runs the health
// checks of the backends, and derives the serving VIPs. Work is
// proportional to what changes: a reload programs the services it adds,
// changes or removes, a health event the services using that target.
type Manager struct {
	opts   Options
	ids    *IDs
	checks *health.Checker
	events chan health.Event
	cancel context.CancelFunc
	done   chan struct{}
	drains drainStore

	mu          sync.Mutex
	cfg         Config
	svcs        map[string]*mservice
	keys        map[ServiceKey]string // the name of the service of each key
	drained     map[BackendRef]bool   // drained at run time (airctl lb drain)
	users       map[health.Spec]map[string]struct{}
	serving     map[netip.Addr]int  // VIP -> its services with a usable backend
	servFlips   []netip.Addr        // VIPs that entered or left serving since the last publishServing
	servList    []netip.Addr        // the serving VIPs last published, sorted
	servPub     map[netip.Addr]bool // the same, as a set
	probePath   ProbePath
	pathChanged bool              // probePath changed since the last Apply
	fallbacks   map[string]string // service -> why its checks go direct (logged once)
	started     bool              // the first Apply succeeded
	restoring   bool              // an earlier process's tables were adopted
	dirty       map[string]bool   // services whose health change is not programmed yet
}

// mservice is one configured service and what the data plane reports
// back for it.
type mservice struct {
	Service
	usable   uint32        // backends with slots in its table (the serving signal)
	specs    []health.Spec // its health check targets (none without checks)
	fallback string        // why its checks go direct, when they do
}

// BackendRef names one backend of one service.
type BackendRef struct {
	Service string     `json:"service"`
	Backend netip.Addr `json:"backend"`
}

// New starts a manager with no services. With a data plane, it adopts
// what an earlier process programmed there: ids, and tables that a
// service keeps until its backends' health is decided again.
func New(ctx context.Context, o Options) (*Manager, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	m := &Manager{opts: o, events: make(chan health.Event, 4096), done: make(chan struct{}),
		drains: drainStore{dir: o.StateDir}, svcs: map[string]*mservice{}, keys: map[ServiceKey]string{}, drained: map[BackendRef]bool{},
		users: map[health.Spec]map[string]struct{}{}, serving: map[netip.Addr]int{}, dirty: map[string]bool{}}
	if o.Dataplane != nil {
		m.ids = NewIDs(o.Dataplane.Limits())
		a, err := o.Dataplane.Adopt(m.ids)
		if err != nil {
			return nil, err
		}
		m.restoring = a.Tables > 0
		if a.Services > 0 || a.Backends > 0 {
			o.Logger.Info("lb: adopted the data plane of an earlier process", "services", a.Services, "tables", a.Tables, "backends", a.Backends)
		}
	}
	drained, err := m.drains.load()
	if err != nil {
		o.Logger.Warn("lb: drained backends not restored", "err", err)
	}
	for _, r := range drained {
		m.drained[r] = true
	}
	ctx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	checks, err := health.New(ctx, health.Options{Dialer: o.Dialer, Logger: o.Logger, Events: m.events})
	if err != nil {
		cancel()
		return nil, err
	}
	m.checks = checks
	go m.loop(ctx)
	return m, nil
}

// Close stops health checking.
func (m *Manager) Close() {
	m.cancel()
	<-m.done
}

// IDs returns the manager's id allocator (nil without a data plane). It
// is not safe for concurrent use: read it through Manager methods.
func (m *Manager) limits() Limits {
	if m.opts.Dataplane == nil {
		return Limits{}
	}
	return m.opts.Dataplane.Limits()
}

func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	retry := time.NewTicker(retryInterval)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-m.events:
			specs := []health.Spec{ev.Spec}
			for more := true; more; {
				select {
				case ev := <-m.events:
					specs = append(specs, ev.Spec)
				default:
					more = false
				}
			}
			m.healthChanged(specs)
		case <-retry.C:
			m.healthChanged(nil)
		}
	}
}

// healthChanged reprograms the services that use the targets in specs
// (and those a failed attempt left dirty).
func (m *Manager) healthChanged(specs []health.Spec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range specs {
		for name := range m.users[s] {
			m.dirty[name] = true
		}
	}
	if len(m.dirty) == 0 {
		return
	}
	names := make([]string, 0, len(m.dirty))
	for n := range m.dirty {
		names = append(names, n)
	}
	if err := m.reprogram(names); err != nil {
		m.opts.Logger.Error("lb: programming a health change failed; retrying", "services", len(names), "err", err)
		return
	}
	clear(m.dirty)
}

// reprogram programs the named services again with their current health
// and drain state. Called with m.mu held.
func (m *Manager) reprogram(names []string) error {
	ch := Change{TableSize: m.cfg.MaglevTableSize, SlotsPerBackend: m.cfg.MaglevSlotsPerBackend, Checked: true}
	var svcs []*mservice
	for _, n := range names {
		if s := m.svcs[n]; s != nil {
			svcs = append(svcs, s)
			ch.Upsert = append(ch.Upsert, m.upsert(&s.Service, s.specs))
		}
	}
	res, err := m.program(ch, svcs)
	if err != nil {
		return err
	}
	for _, s := range svcs {
		m.setUsable(s, res[s.Key()])
	}
	m.publishServing()
	return nil
}

// program hands ch to the data plane; without one it works out each
// service's usable backends itself.
func (m *Manager) program(ch Change, svcs []*mservice) (map[ServiceKey]uint32, error) {
	if m.opts.Dataplane != nil {
		return m.opts.Dataplane.Program(ch)
	}
	res := make(map[ServiceKey]uint32, len(ch.Upsert))
	for _, u := range ch.Upsert {
		var n uint32
		for i, b := range u.Service.Backends {
			if u.Usable[i] && b.Weight > 0 {
				n++
			}
		}
		res[u.Service.Key()] = n
	}
	return res, nil
}

// upsert returns the data plane's view of service s: which backends may
// take new flows now. specs are its registered health targets (nil: work
// them out, for a service not registered yet). Called with m.mu held.
func (m *Manager) upsert(s *Service, specs []health.Spec) Upsert {
	u := Upsert{Service: s, Usable: make([]bool, len(s.Backends))}
	for i, b := range s.Backends {
		ok := !m.drained[BackendRef{s.Name, b.Address}]
		spec, checked := health.Spec{}, false
		if len(specs) == len(s.Backends) {
			spec, checked = specs[i], true
		} else {
			spec, checked = m.spec(s, i)
		}
		if checked && ok {
			st, known := m.checks.Status(spec)
			switch {
			case !known || !st.Known:
				// Not probed yet: new backends start healthy; after a
				// restart the adopted table stands until the answer.
				u.Pending = u.Pending || m.restoring
			case !st.Healthy:
				ok = false
			}
		}
		u.Usable[i] = ok
	}
	return u
}

// setUsable records a service's usable count and its VIP's serving
// count. Called with m.mu held.
func (m *Manager) setUsable(s *mservice, n uint32) {
	if (s.usable > 0) == (n > 0) {
		s.usable = n
		return
	}
	s.usable = n
	if n > 0 {
		if m.serving[s.VIP]++; m.serving[s.VIP] == 1 {
			m.servFlips = append(m.servFlips, s.VIP)
		}
	} else if m.serving[s.VIP]--; m.serving[s.VIP] <= 0 {
		delete(m.serving, s.VIP)
		m.servFlips = append(m.servFlips, s.VIP)
	}
}

// publishServing reports the serving VIPs when the set changed: a VIP that
// left and came back (a service moved to another port) changes nothing.
// Called with m.mu held.
func (m *Manager) publishServing() {
	flips := m.servFlips
	m.servFlips = m.servFlips[:0]
	if !slices.ContainsFunc(flips, func(v netip.Addr) bool { return (m.serving[v] > 0) != m.servPub[v] }) {
		return
	}
	list := make([]netip.Addr, 0, len(m.serving))
	m.servPub = make(map[netip.Addr]bool, len(m.serving))
	for a := range m.serving {
		list = append(list, a)
		m.servPub[a] = true
	}
	slices.SortFunc(list, func(a, b netip.Addr) int { return a.Compare(b) })
	m.servList = list
	m.opts.Logger.Info("serving VIPs changed", "count", len(list))
	m.opts.OnServing(slices.Clone(list))
}

// Serving returns the VIPs that can serve now.
func (m *Manager) Serving() []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.servList)
}

// SetDrained drains (or undrains) one backend at run time: it takes no new
// flows, established ones keep it. The drain lasts until undone or until the
// backend leaves the configuration, across restarts of aird (StateDir).
func (m *Manager) SetDrained(service string, backend netip.Addr, drained bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.svcs[service]
	if s == nil || !slices.ContainsFunc(s.Backends, func(b Backend) bool { return b.Address == backend }) {
		return fmt.Errorf("lb: no backend %s in service %q", backend, service)
	}
	r := BackendRef{service, backend}
	if m.drained[r] == drained {
		return nil
	}
	set := func(on bool) {
		if on {
			m.drained[r] = true
		} else {
			delete(m.drained, r)
		}
	}
	set(drained)
	if err := m.drains.save(m.drained); err != nil {
		set(!drained)
		return fmt.Errorf("lb: %w", err)
	}
	if err := m.reprogram([]string{service}); err != nil {
		set(!drained)
		if serr := m.drains.save(m.drained); serr != nil {
			m.opts.Logger.Error("lb: drained backends file not restored", "err", serr)
		}
		return err
	}
	return nil
}
