package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/ipam"
	"github.com/aird-net/aird/router"
)

// routerComponent owns the node's endpoints (router.Manager): it starts
// once the data plane and IPAM are up, adopting the endpoints an earlier
// aird created, and leaves them in place when aird stops.
type routerComponent struct {
	log     *slog.Logger
	dp      *datapathComponent
	ipam    *ipamComponent
	onHosts func([]netip.Addr) // the BGP component's: VM addresses to announce

	mu sync.Mutex
	m  *router.Manager
}

func (c *routerComponent) name() string       { return "router" }
func (c *routerComponent) sections() []string { return []string{config.SectionIPAM} }

func (c *routerComponent) apply(old, new *config.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m != nil {
		return nil
	}
	al := c.ipam.allocator()
	if al == nil {
		return errors.New("router: no address allocator")
	}
	dir := stateDir()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("router: state directory: %w", err)
	}
	opts := router.Options{Logger: c.log, StatePath: filepath.Join(dir, "endpoints.db"), IPAM: al, OnHosts: c.onHosts}
	if c.dp != nil && c.dp.dp != nil {
		maps, err := c.dp.dp.RouterMaps()
		if err != nil {
			return fmt.Errorf("router: %w", err)
		}
		opts.Dataplane, opts.Maps = c.dp.dp, bpf.NewRouter(maps)
	}
	m, err := router.New(opts)
	if err != nil {
		return err
	}
	c.m = m
	return nil
}

func (c *routerComponent) manager() *router.Manager {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m
}

func (c *routerComponent) close(stopIntent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		return nil
	}
	err := c.m.Close()
	c.m = nil
	return err
}

// EndpointAdd implements api.EndpointBackend.
func (d *Daemon) EndpointAdd(req api.EndpointRequest) (api.Endpoint, error) {
	m := d.router.manager()
	if m == nil {
		return api.Endpoint{}, fmt.Errorf("endpoints: %w", api.ErrNotConfigured)
	}
	st, err := m.Add(router.Request{Name: req.Name, Netns: req.Netns, Ifname: req.Ifname, Tap: req.Tap, MAC: req.MAC,
		Families: req.Families, VIPs: req.VIPs})
	if err != nil {
		return api.Endpoint{}, endpointError(err)
	}
	return apiEndpoint(st), nil
}

// EndpointDelete implements api.EndpointBackend.
func (d *Daemon) EndpointDelete(name string) error {
	m := d.router.manager()
	if m == nil {
		return fmt.Errorf("endpoints: %w", api.ErrNotConfigured)
	}
	return endpointError(m.Delete(name))
}

// Endpoints implements api.EndpointBackend.
func (d *Daemon) Endpoints() ([]api.Endpoint, error) {
	m := d.router.manager()
	if m == nil {
		return nil, fmt.Errorf("endpoints: %w", api.ErrNotConfigured)
	}
	sts := m.List()
	out := make([]api.Endpoint, 0, len(sts))
	for _, st := range sts {
		out = append(out, apiEndpoint(st))
	}
	return out, nil
}

// Endpoint implements api.EndpointBackend.
func (d *Daemon) Endpoint(name string) (api.Endpoint, error) {
	m := d.router.manager()
	if m == nil {
		return api.Endpoint{}, fmt.Errorf("endpoints: %w", api.ErrNotConfigured)
	}
	st, err := m.Get(name)
	if err != nil {
		return api.Endpoint{}, endpointError(err)
	}
	return apiEndpoint(st), nil
}

// endpointError maps the router's and IPAM's errors to the API's.
func endpointError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, router.ErrInvalid), errors.Is(err, ipam.ErrNoPool):
		return fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	case errors.Is(err, router.ErrNotFound):
		return fmt.Errorf("%w: %w", api.ErrNotFound, err)
	case errors.Is(err, router.ErrExists), errors.Is(err, router.ErrFull), errors.Is(err, ipam.ErrExhausted),
		errors.Is(err, ipam.ErrConflict):
		return fmt.Errorf("%w: %w", api.ErrConflict, err)
	}
	return err
}

func apiEndpoint(st router.Status) api.Endpoint {
	c := st.Counters
	return api.Endpoint{Name: st.Name, Kind: st.Kind, State: st.State, ID: st.ID, Interface: st.HostIf, Netns: st.Netns,
		Ifname: st.Ifname, Tap: st.Tap, MAC: st.MAC, MTU: st.MTU, Addresses: st.Addrs, VIPs: st.VIPs, Created: st.Created,
		Counters: api.EndpointCounters{RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets, TxBytes: c.TxBytes,
			DropSpoofed: c.DropSpoofed, DropDecap: c.DropDecap}}
}
