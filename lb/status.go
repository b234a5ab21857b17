package lb

import (
	"net/netip"
	"slices"

	"github.com/aird-net/aird/lb/health"
)

// ServiceStatus describes one service for the API.
type ServiceStatus struct {
	Name     string          `json:"name"`
	VIP      netip.Addr      `json:"vip"`
	Port     int             `json:"port"`
	Protocol string          `json:"protocol"`
	Serving  bool            `json:"serving"`
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus describes one backend of a service.
type BackendStatus struct {
	Address netip.Addr    `json:"address"`
	Weight  int           `json:"weight"`
	Drained bool          `json:"drained"`
	Health  health.Status `json:"health"`
}

// Services returns every service with its backends' state.
func (m *Manager) Services() []ServiceStatus {
	st := m.checks.Status()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ServiceStatus, 0, len(m.services))
	for _, s := range m.services {
		ss := ServiceStatus{Name: s.Name, VIP: s.VIP, Port: s.Port, Protocol: s.Protocol,
			Serving: slices.Contains(m.serving, s.VIP), Backends: []BackendStatus{}}
		for _, b := range s.Backends {
			k := BackendKey(s.Name, b.Address)
			ss.Backends = append(ss.Backends, BackendStatus{Address: b.Address, Weight: b.Weight, Drained: m.drained[k], Health: st[k]})
		}
		out = append(out, ss)
	}
	return out
}
