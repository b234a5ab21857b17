package router

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/ipam"
)

// Errors of the manager's API (test with errors.Is).
var (
	ErrNotFound = errors.New("no such endpoint")
	ErrExists   = errors.New("endpoint exists")
	ErrInvalid  = errors.New("invalid request")
	ErrFull     = errors.New("endpoint limit reached")
)

// Addresses is what the router needs of IPAM (an *ipam.Allocator).
type Addresses interface {
	AllocateAll(reqs []ipam.Request, optional bool) ([]ipam.Allocation, error)
	Release(owner string) ([]ipam.Allocation, error)
	Allocations(pool string) []ipam.Allocation
}

// Dataplane is what the router needs of the data plane (an
// *internal/datapath.Datapath): the endpoint program on host-side links.
type Dataplane interface {
	AttachEndpoint(ifname string) error
	DetachEndpoint(ifname string) error
	EndpointLinks() ([]string, error)
}

// Options configure a Manager.
type Options struct {
	Logger *slog.Logger
	// StatePath is the endpoint store (bbolt); its directory must exist.
	StatePath string
	IPAM      Addresses
	// Dataplane and Maps are nil without a data plane: endpoints then
	// work through the kernel's forwarding alone.
	Dataplane Dataplane
	Maps      *bpf.Router
	// MTU of container links; 0 means 1500.
	MTU int
	// MaxEndpoints bounds the endpoints (and ids); 0 means
	// bpf.MaxEndpoints-1.
	MaxEndpoints int
	// ProcSys is /proc/sys/net (tests point it elsewhere); "" means that.
	ProcSys string
	// OnHosts, if set, is told the addresses of every VM endpoint after
	// each change (VM addresses come from pools that span nodes, so the
	// node announces each as a host route). It is called without the
	// manager's lock held.
	OnHosts func([]netip.Addr)
}

func (o *Options) validate() error {
	if o.StatePath == "" || o.IPAM == nil {
		return errors.New("router: no state path or no IPAM")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MTU == 0 {
		o.MTU = 1500
	}
	if o.MaxEndpoints == 0 || o.MaxEndpoints > bpf.MaxEndpoints-1 {
		o.MaxEndpoints = bpf.MaxEndpoints - 1
	}
	if o.ProcSys == "" {
		o.ProcSys = "/proc/sys/net"
	}
	if (o.Dataplane == nil) != (o.Maps == nil) {
		return errors.New("router: a data plane needs both its links and its maps")
	}
	return nil
}

// Manager owns the node's endpoints. Its methods are safe for concurrent
// use; changes are serialized.
type Manager struct {
	opts    Options
	log     *slog.Logger
	st      *store
	mu      sync.Mutex
	eps     map[string]*Endpoint
	missing map[string]bool
	ids     map[uint32]string
	nextID  uint32
	learn   *macLearner
}

// New opens the store and adopts the endpoints it holds (see the package
// comment), removing what an interrupted Add left behind.
func New(opts Options) (*Manager, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	st, err := openStore(opts.StatePath)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	m := &Manager{opts: opts, log: opts.Logger, st: st, eps: map[string]*Endpoint{}, missing: map[string]bool{},
		ids: map[uint32]string{}, nextID: 1}
	if err := m.adopt(); err != nil {
		st.close()
		return nil, err
	}
	m.learn = startMACLearner(m)
	m.announce()
	return m, nil
}

// announce tells OnHosts the VM endpoints' addresses.
func (m *Manager) announce() {
	if m.opts.OnHosts == nil {
		return
	}
	m.mu.Lock()
	var hosts []netip.Addr
	for _, ep := range m.eps {
		if ep.Kind == KindVM && !m.missing[ep.Name] {
			hosts = append(hosts, ep.Addrs...)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(hosts, func(a, b netip.Addr) int { return a.Compare(b) })
	m.opts.OnHosts(hosts)
}

// Close stops the manager and leaves every endpoint in place.
func (m *Manager) Close() error {
	if m.learn != nil {
		m.learn.stop()
	}
	return m.st.close()
}

// allocID returns a free endpoint id; a freed id comes back only after
// every other (counters of a reused id are reset anyway).
func (m *Manager) allocID() (uint32, error) {
	limit := uint32(m.opts.MaxEndpoints)
	for range limit {
		if m.nextID == 0 || m.nextID > limit {
			m.nextID = 1
		}
		id := m.nextID
		m.nextID++
		if _, used := m.ids[id]; !used {
			return id, nil
		}
	}
	return 0, fmt.Errorf("%w (%d)", ErrFull, limit)
}

// Add creates an endpoint; all or nothing. Adding an endpoint that exists
// with the same namespace or tap returns it (a retried request); with
// another, ErrExists.
func (m *Manager) Add(req Request) (Status, error) {
	st, err := m.addLocked(req)
	if err == nil && st.Kind == KindVM {
		m.announce()
	}
	return st, err
}

func (m *Manager) addLocked(req Request) (Status, error) {
	if err := req.validate(); err != nil {
		return Status{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.eps[req.Name]; cur != nil {
		if cur.Netns == req.Netns && cur.Tap == req.Tap && cur.Ifname == req.Ifname {
			return m.status(cur), nil
		}
		return Status{}, fmt.Errorf("%w: %s (%s)", ErrExists, req.Name, describe(cur))
	}
	if req.Tap != "" {
		for _, e := range m.eps {
			if e.Tap == req.Tap {
				return Status{}, fmt.Errorf("%w: tap %s belongs to endpoint %s", ErrExists, req.Tap, e.Name)
			}
		}
	}
	if len(m.eps) >= m.opts.MaxEndpoints {
		return Status{}, fmt.Errorf("%w (%d)", ErrFull, m.opts.MaxEndpoints)
	}
	u := &undo{}
	ep, err := m.add(req, u)
	if err != nil {
		if uerr := u.run(); uerr != nil {
			m.log.Error("endpoint add failed and was not fully undone", "endpoint", req.Name, "error", uerr)
		}
		return Status{}, err
	}
	m.eps[ep.Name], m.ids[ep.ID] = ep, ep.Name
	m.log.Info("endpoint added", "endpoint", ep.Name, "kind", ep.Kind, "interface", ep.HostIf, "addresses", ep.Addrs, "vips", ep.VIPs)
	return m.status(ep), nil
}

func describe(e *Endpoint) string {
	if e.Kind == KindVM {
		return "tap " + e.Tap
	}
	return "netns " + e.Netns
}

func (m *Manager) add(req Request, u *undo) (*Endpoint, error) {
	id, err := m.allocID()
	if err != nil {
		return nil, err
	}
	ep := &Endpoint{Name: req.Name, Kind: req.Kind(), ID: id, Netns: req.Netns, Ifname: req.Ifname, Tap: req.Tap,
		VIPs: req.VIPs, MTU: m.opts.MTU, Created: time.Now().UTC()}
	if ep.Kind == KindContainer {
		ep.HostIf, ep.MAC = hostIfName(req.Name), endpointMAC(req.Name).String()
	} else {
		ep.HostIf = req.Tap
		if req.MAC != "" {
			mac, _ := net.ParseMAC(req.MAC)
			ep.MAC = mac.String()
		}
	}
	var steps stepTimer
	steps.mark("")
	if err := m.allocate(ep, req.Families, u); err != nil {
		return nil, err
	}
	steps.mark("allocate")
	l, err := m.link(ep, u)
	if err != nil {
		return nil, err
	}
	steps.mark("link")
	if err := configureHost(ep, l, m.opts.ProcSys, nil); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", ep.Name, err)
	}
	steps.mark("host")
	if err := m.program(ep, l, u); err != nil {
		return nil, err
	}
	steps.mark("program")
	if err := m.st.put(ep); err != nil {
		return nil, err
	}
	steps.mark("store")
	m.log.Debug("endpoint add steps", append([]any{"endpoint", ep.Name}, steps.attrs()...)...)
	return ep, nil
}

// stepTimer records how long each step of an operation took (for the
// debug log).
type stepTimer struct {
	last  time.Time
	steps []any
}

func (s *stepTimer) mark(name string) {
	now := time.Now()
	if !s.last.IsZero() {
		s.steps = append(s.steps, name, now.Sub(s.last).Round(time.Microsecond))
	}
	s.last = now
}

func (s *stepTimer) attrs() []any { return s.steps }

// allocate gets the endpoint's addresses from IPAM in one transaction:
// each family asked for, or every family a pool of the endpoint's kind
// has.
func (m *Manager) allocate(ep *Endpoint, families []string, u *undo) error {
	kind := ipam.KindPod
	if ep.Kind == KindVM {
		kind = ipam.KindVM
	}
	explicit := len(families) > 0
	if !explicit {
		families = []string{"ipv6", "ipv4"}
	}
	reqs := make([]ipam.Request, len(families))
	for i, f := range families {
		reqs[i] = ipam.Request{Owner: owner(ep.Name), Family: ipam.Family(f), Kind: kind}
	}
	u.add(func() error { _, err := m.opts.IPAM.Release(owner(ep.Name)); return err })
	als, err := m.opts.IPAM.AllocateAll(reqs, !explicit)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.Name, err)
	}
	for _, al := range als {
		ep.Addrs = append(ep.Addrs, al.Addr)
	}
	if len(ep.Addrs) == 0 {
		return fmt.Errorf("endpoint %s: %w: no pool of kind %q has addresses for it (configure [ipam] pod-prefixes or a %q pool)", ep.Name, ErrInvalid, kind, kind)
	}
	return nil
}

// link creates (container) or checks (VM) the endpoint's link.
func (m *Manager) link(ep *Endpoint, u *undo) (netlink.Link, error) {
	if ep.Kind == KindVM {
		l, err := netlink.LinkByName(ep.Tap)
		if err != nil {
			return nil, fmt.Errorf("%w: tap %s: %w", ErrInvalid, ep.Tap, err)
		}
		if l.Type() != "tuntap" {
			return nil, fmt.Errorf("%w: %s is a %s link, not a tap", ErrInvalid, ep.Tap, l.Type())
		}
		ep.MTU = l.Attrs().MTU
		u.add(func() error { return removeTapGateways(l) })
		u.add(func() error { return removeHostRoutes(ep, l) })
		return l, nil
	}
	ns, err := openNetns(ep.Netns)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer ns.Close()
	l, err := createVeth(ep, ns)
	if err != nil {
		return nil, err
	}
	u.add(func() error { return netlink.LinkDel(l) })
	if err := configureContainer(ep, ns, l.Attrs().HardwareAddr); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", ep.Name, err)
	}
	return l, nil
}

// program attaches the endpoint program and writes the router maps.
func (m *Manager) program(ep *Endpoint, l netlink.Link, u *undo) error {
	if m.opts.Dataplane == nil {
		return nil
	}
	if err := m.opts.Dataplane.AttachEndpoint(ep.HostIf); err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.Name, err)
	}
	u.add(func() error { return m.opts.Dataplane.DetachEndpoint(ep.HostIf) })
	if err := m.opts.Maps.ResetCounters(ep.ID); err != nil {
		return err
	}
	be := bpfEndpoint(ep, l)
	if err := m.opts.Maps.SetEndpoint(be, nil); err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.Name, err)
	}
	u.add(func() error { return m.opts.Maps.DeleteEndpoint(be) })
	return nil
}

func bpfEndpoint(ep *Endpoint, l netlink.Link) bpf.Endpoint {
	mac, _ := net.ParseMAC(ep.MAC)
	return bpf.Endpoint{ID: ep.ID, Ifindex: l.Attrs().Index, MAC: mac, HostMAC: l.Attrs().HardwareAddr,
		MTU: l.Attrs().MTU, Addrs: ep.Addrs, VIPs: ep.VIPs}
}

// Delete removes an endpoint: maps, program, routes, its link (a
// container's veth; a VM's tap stays, without aird's addresses), its
// addresses and its record.
func (m *Manager) Delete(name string) error {
	vm, err := m.deleteLocked(name)
	if err == nil && vm {
		m.announce()
	}
	return err
}

func (m *Manager) deleteLocked(name string) (vm bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ep := m.eps[name]
	if ep == nil {
		return false, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err := m.teardown(ep); err != nil {
		return false, err
	}
	delete(m.eps, name)
	delete(m.ids, ep.ID)
	delete(m.missing, name)
	m.log.Info("endpoint deleted", "endpoint", name)
	return ep.Kind == KindVM, nil
}

// teardown undoes everything Add did for ep, its record last (so an
// interrupted delete is retried from a record, not lost).
func (m *Manager) teardown(ep *Endpoint) error {
	var errs []error
	l, lerr := netlink.LinkByName(ep.HostIf)
	if m.opts.Dataplane != nil {
		var be bpf.Endpoint
		if lerr == nil {
			be = bpfEndpoint(ep, l)
		} else {
			be = bpf.Endpoint{ID: ep.ID, Addrs: ep.Addrs, VIPs: ep.VIPs}
		}
		errs = append(errs, m.opts.Maps.DeleteEndpoint(be), m.opts.Dataplane.DetachEndpoint(ep.HostIf))
	}
	if lerr == nil {
		if ep.Kind == KindVM {
			errs = append(errs, removeHostRoutes(ep, l), removeTapGateways(l))
		} else if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", ep.HostIf, err))
		}
	}
	if _, err := m.opts.IPAM.Release(owner(ep.Name)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", ep.Name, err)
	}
	return m.st.delete(ep.Name)
}

// List returns every endpoint with its state and counters, by name.
func (m *Manager) List() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.eps))
	for _, ep := range m.eps {
		out = append(out, m.status(ep))
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Get returns one endpoint.
func (m *Manager) Get(name string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ep := m.eps[name]
	if ep == nil {
		return Status{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return m.status(ep), nil
}

func (m *Manager) status(ep *Endpoint) Status {
	s := Status{Endpoint: *ep, State: StateReady}
	s.Addrs, s.VIPs = slices.Clone(ep.Addrs), slices.Clone(ep.VIPs)
	if m.missing[ep.Name] {
		s.State = StateMissing
	}
	if m.opts.Maps != nil {
		if c, err := m.opts.Maps.Counters(ep.ID); err == nil {
			s.Counters = Counters{RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets, TxBytes: c.TxBytes,
				DropSpoofed: c.DropSpoofed, DropDecap: c.DropDecap}
		}
	}
	return s
}

// Addresses returns the addresses of every endpoint (the data plane's
// view of what is local).
func (m *Manager) Addresses() []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []netip.Addr
	for _, ep := range m.eps {
		out = append(out, ep.Addrs...)
	}
	return out
}

// undo collects the steps that take back a half-done change, run newest
// first.
type undo struct{ fs []func() error }

func (u *undo) add(f func() error) { u.fs = append(u.fs, f) }

func (u *undo) run() error {
	var errs []error
	for i := len(u.fs) - 1; i >= 0; i-- {
		errs = append(errs, u.fs[i]())
	}
	return errors.Join(errs...)
}

// Events returns the router stage's event counters ("delivered", ...); nil
// without a data plane.
func (m *Manager) Events() (map[string]uint64, error) {
	if m.opts.Maps == nil {
		return nil, nil
	}
	return m.opts.Maps.Events()
}
