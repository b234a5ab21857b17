package lb

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/aird-net/aird/lb/health"
)

// ServiceStatus describes one service.
type ServiceStatus struct {
	Name     string
	VIP      netip.Addr
	Port     int
	Protocol string
	// Serving is true while the VIP has a usable backend (in any of its
	// services): the VIP is advertised.
	Serving bool
	// Usable counts the backends with slots in the service's table now;
	// Total its backends.
	Usable, Total int
	// Backends is filled when asked for (ServiceQuery.Backends).
	Backends []BackendStatus
}

// BackendStatus describes one backend of a service.
type BackendStatus struct {
	Address netip.Addr
	Weight  uint32
	Drained bool
	// Checked is false for a service without health checks: the
	// backend counts as healthy.
	Checked bool
	Health  health.Status
}

// ServiceQuery selects services.
type ServiceQuery struct {
	// Match, if set, picks services (by name, VIP, port, protocol).
	Match func(s *Service) bool
	// After continues a listing after the service of that name
	// (configuration order); Limit caps its length (0: no cap).
	After string
	Limit int
	// Backends adds every backend's state.
	Backends bool
}

// ServiceList is one page of services.
type ServiceList struct {
	Services []ServiceStatus
	// Next is the After of the next page, "" when this is the last.
	Next string
}

// Services returns the services q selects, in configuration order.
func (m *Manager) Services(q ServiceQuery) (ServiceList, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ss := m.cfg.Services
	start := 0
	if q.After != "" {
		i := slices.IndexFunc(ss, func(s Service) bool { return s.Name == q.After })
		if i < 0 {
			return ServiceList{}, fmt.Errorf("lb: no service %q to list after (the configuration changed?)", q.After)
		}
		start = i + 1
	}
	out := ServiceList{Services: []ServiceStatus{}}
	for i := start; i < len(ss); i++ {
		s := &ss[i]
		if q.Match != nil && !q.Match(s) {
			continue
		}
		if q.Limit > 0 && len(out.Services) == q.Limit {
			out.Next = out.Services[len(out.Services)-1].Name
			break
		}
		out.Services = append(out.Services, m.status(m.svcs[s.Name], q.Backends))
	}
	return out, nil
}

// status describes s. Called with m.mu held.
func (m *Manager) status(s *mservice, backends bool) ServiceStatus {
	st := ServiceStatus{Name: s.Name, VIP: s.VIP, Port: s.Port, Protocol: s.Protocol,
		Serving: m.serving[s.VIP] > 0, Usable: int(s.usable), Total: len(s.Backends)}
	if !backends {
		return st
	}
	st.Backends = make([]BackendStatus, len(s.Backends))
	for i, b := range s.Backends {
		bs := BackendStatus{Address: b.Address, Weight: b.Weight, Drained: m.drained[BackendRef{s.Name, b.Address}]}
		if len(s.specs) == len(s.Backends) {
			bs.Checked = true
			bs.Health, _ = m.checks.Status(s.specs[i])
		} else {
			bs.Health = health.Status{Healthy: true, Known: true}
		}
		st.Backends[i] = bs
	}
	return st
}

// ServiceIDs are the data-plane ids of one programmed service: VIPID
// indexes vip_stats (and maglev, allow), each backend's ID backend_cpu (its counters).
type ServiceIDs struct {
	Name     string
	VIP      netip.Addr
	Port     int
	Protocol string
	VIPID    uint32
	Backends []BackendID // filled when asked for
}

// BackendID is the id of one backend address. Ids belong to addresses: a
// backend address in several services has one id, so its counters are
// the sum over those services.
type BackendID struct {
	Address netip.Addr
	ID      uint32
}

// IDs returns the ids of the services match picks (nil: all), in
// configuration order, with their backends' ids when backends is set. A
// service or backend without an id (no data plane) is left out.
func (m *Manager) IDs(match func(*Service) bool, backends bool) []ServiceIDs {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ids == nil {
		return nil
	}
	out := []ServiceIDs{}
	for i := range m.cfg.Services {
		s := &m.cfg.Services[i]
		if match != nil && !match(s) {
			continue
		}
		vid, ok := m.ids.VIP(s.Key())
		if !ok {
			continue
		}
		ids := ServiceIDs{Name: s.Name, VIP: s.VIP, Port: s.Port, Protocol: s.Protocol, VIPID: vid}
		if backends {
			ids.Backends = make([]BackendID, 0, len(s.Backends))
			for _, b := range s.Backends {
				if id, ok := m.ids.Backend(b.Address); ok {
					ids.Backends = append(ids.Backends, BackendID{Address: b.Address, ID: id})
				}
			}
		}
		out = append(out, ids)
	}
	return out
}

// BackendIDs returns the id of every backend address of the services, by
// address.
func (m *Manager) BackendIDs() []BackendID {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ids == nil {
		return nil
	}
	out := make([]BackendID, 0, len(m.ids.backendOf))
	for a, id := range m.ids.backendOf {
		out = append(out, BackendID{Address: a, ID: id})
	}
	slices.SortFunc(out, func(a, b BackendID) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
