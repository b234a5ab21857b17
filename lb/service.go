package lb

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/lb/health"
)

// Config is what the manager follows: the services, and the cap on every
// Maglev table's size.
type Config struct {
	Services []Service
	// MaglevTableSize caps the size of a VIP's Maglev table (a prime,
	// lb.maglev-table-size); 0 means DefaultMaglevTableSize.
	MaglevTableSize uint32
	// MaglevSlotsPerBackend is the least number of slots per backend a
	// table gets below the cap (lb.maglev-slots-per-backend); 0 means
	// DefaultSlotsPerBackend.
	MaglevSlotsPerBackend uint32
}

// DefaultMaglevTableSize is the default cap of a Maglev table's size.
const DefaultMaglevTableSize = 65537

// DefaultSlotsPerBackend is the default least number of Maglev slots per
// backend: enough for every backend's share to be within 1 % (lb/maglev).
const DefaultSlotsPerBackend = 100

// MinSlotsPerBackend and MaxSlotsPerBackend bound
// Config.MaglevSlotsPerBackend.
const (
	MinSlotsPerBackend = 100
	MaxSlotsPerBackend = 10_000
)

// Service is one load-balanced service: a VIP, a protocol and a port (0:
// every port of the VIP), and its backends.
type Service struct {
	Name         string
	VIP          netip.Addr
	Port         int
	Protocol     string // "tcp" or "udp"
	AllowSources []netip.Prefix
	Backends     []Backend
	HealthCheck  HealthCheck
}

// Backend is one real server behind a service.
type Backend struct {
	Address netip.Addr
	// Weight is the backend's relative share of new flows; 0 takes none.
	Weight uint32
}

// HealthCheck says how a service's backends are probed.
type HealthCheck struct {
	Type      string // health.TypeNone, TypeTCP or TypeHTTP
	Port      int
	Path      string // HTTP
	StatusMin int    // accepted HTTP status range
	StatusMax int
	Interval  time.Duration
	Timeout   time.Duration
	Rise      int
	Fall      int
	// Via is health.ViaTunnel (probe the VIP through the encapsulated path
	// data packets take) or health.ViaDirect (the backend's own address).
	Via string
}

// ServiceKey is what identifies a service in the data plane: one vip id
// per key.
type ServiceKey struct {
	VIP   netip.Addr
	Proto uint8 // 6 or 17
	Port  uint16
}

func (k ServiceKey) String() string {
	return fmt.Sprintf("%s %s/%d", k.VIP, protoName(k.Proto), k.Port)
}

// Key returns the service's key.
func (s *Service) Key() ServiceKey {
	return ServiceKey{VIP: s.VIP.Unmap(), Proto: protoNum(s.Protocol), Port: uint16(s.Port)}
}

func protoNum(s string) uint8 {
	if s == "udp" {
		return 17
	}
	return 6
}

func protoName(p uint8) string {
	if p == 17 {
		return "udp"
	}
	return "tcp"
}

// equal reports whether two services program the same thing.
func (s *Service) equal(o *Service) bool {
	return s.Name == o.Name && s.VIP == o.VIP && s.Port == o.Port && s.Protocol == o.Protocol &&
		slices.Equal(s.AllowSources, o.AllowSources) && sameBackends(s.Backends, o.Backends) && s.HealthCheck == o.HealthCheck
}

// sameBackends compares two backend lists, in constant time when they are
// the same slice (a service the configuration did not change: the daemon
// hands the manager the same slices again).
func sameBackends(a, b []Backend) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return slices.Equal(a, b)
}

// validate checks what the data plane relies on. The configuration
// (internal/config) reports the same problems with file and line; this is
// the net for other callers.
func (s *Service) validate() error {
	var errs []error
	switch {
	case s.Name == "":
		errs = append(errs, errors.New("no name"))
	case !s.VIP.IsValid():
		errs = append(errs, errors.New("no VIP"))
	case s.Protocol != "tcp" && s.Protocol != "udp":
		errs = append(errs, fmt.Errorf("protocol %q is not tcp or udp", s.Protocol))
	case s.Port < 0 || s.Port > 65535:
		errs = append(errs, fmt.Errorf("port %d out of range", s.Port))
	case len(s.Backends) > bpf.MaglevMaxBackends:
		errs = append(errs, fmt.Errorf("%d backends: a service has at most %d", len(s.Backends), bpf.MaglevMaxBackends))
	}
	if !distinctBackends(s.Backends) {
		seen := make(map[netip.Addr]bool, len(s.Backends))
		for _, b := range s.Backends {
			switch {
			case !b.Address.IsValid():
				errs = append(errs, errors.New("a backend without an address"))
			case seen[b.Address.Unmap()]:
				errs = append(errs, fmt.Errorf("backend %s listed twice", b.Address))
			}
			seen[b.Address.Unmap()] = true
		}
	}
	if s.HealthCheck.Type != health.TypeNone && s.HealthCheck.Type != health.TypeTCP && s.HealthCheck.Type != health.TypeHTTP {
		errs = append(errs, fmt.Errorf("health check type %q", s.HealthCheck.Type))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("service %q: %w", s.Name, err)
	}
	return nil
}

// distinctBackends reports whether every backend has an address without
// a zone and no address is listed twice: sorted copies of the addresses,
// no map (a map per service was most of a start's checks of 10,000
// services).
func distinctBackends(bs []Backend) bool {
	// On the stack up to 128 backends: a start of 10,000 services of 100
	// checks a million (16 MB of garbage on the heap).
	var stack [128][2]uint64
	addrs := stack[:0]
	if len(bs) > len(stack) {
		addrs = make([][2]uint64, 0, len(bs))
	}
	addrs = addrs[:len(bs)]
	for i, b := range bs {
		if !b.Address.IsValid() || b.Address.Zone() != "" {
			return false
		}
		a := b.Address.Unmap().As16() // injective: an IPv4 address is mapped
		addrs[i] = [2]uint64{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
	}
	slices.SortFunc(addrs, func(x, y [2]uint64) int {
		if c := cmp.Compare(x[0], y[0]); c != 0 {
			return c
		}
		return cmp.Compare(x[1], y[1])
	})
	for i := 1; i < len(addrs); i++ {
		if addrs[i] == addrs[i-1] {
			return false
		}
	}
	return true
}

// validate checks the services against each other and the data plane's
// vip ids (the backend ids, which depend on what is programmed, are
// checked by the programmer's preflight, per change). A service for which
// applied holds (equal to one in force, checked when it was applied) is
// not checked on its own again: a reload of one service among thousands
// checks that one.
func (c *Config) validate(lim Limits, applied func(*Service) bool) error {
	if err := c.validateSizes(); err != nil {
		return err
	}
	names := make(map[string]bool, len(c.Services))
	keys := make(map[ServiceKey]string, len(c.Services))
	var errs []error
	for i := range c.Services {
		s := &c.Services[i]
		if applied == nil || !applied(s) {
			if err := s.validate(); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if names[s.Name] {
			errs = append(errs, fmt.Errorf("service %q: the name is used twice", s.Name))
		}
		names[s.Name] = true
		if other, dup := keys[s.Key()]; dup {
			errs = append(errs, fmt.Errorf("service %q: %s is also service %q", s.Name, s.Key(), other))
		}
		keys[s.Key()] = s.Name
	}
	if lim.MaxVIPs > 0 && len(c.Services) > int(lim.MaxVIPs) {
		errs = append(errs, fmt.Errorf("%d services: the data plane has %d vip ids (lb.max-vips)", len(c.Services), lim.MaxVIPs))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lb: %w", err)
	}
	return nil
}

// validateSizes fills in and checks the table sizes.
func (c *Config) validateSizes() error {
	if c.MaglevTableSize == 0 {
		c.MaglevTableSize = DefaultMaglevTableSize
	}
	if c.MaglevTableSize < 2 || c.MaglevTableSize > maglevMaxSize || !isPrime(c.MaglevTableSize) {
		return fmt.Errorf("lb: maglev table size %d is not a prime up to %d", c.MaglevTableSize, maglevMaxSize)
	}
	if c.MaglevSlotsPerBackend == 0 {
		c.MaglevSlotsPerBackend = DefaultSlotsPerBackend
	}
	if c.MaglevSlotsPerBackend < MinSlotsPerBackend || c.MaglevSlotsPerBackend > MaxSlotsPerBackend {
		return fmt.Errorf("lb: maglev slots per backend %d is not in %d-%d", c.MaglevSlotsPerBackend, MinSlotsPerBackend, MaxSlotsPerBackend)
	}
	return nil
}

// Limits are the data plane's capacities.
type Limits struct {
	MaxVIPs      uint32 // vip ids: services
	MaxBackends  uint32 // backend ids: distinct backend addresses
	VIPEntries   uint32 // vips map entries: services, address and fragments entries
	AllowEntries uint32 // allow list entries over all services
}
