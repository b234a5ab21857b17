package lb

import (
	"net/netip"

	"github.com/aird-net/aird/internal/config"
)

// ServiceIDs are the data-plane ids of one programmed service: VIPID
// indexes vip_stats (and maglev, allow), each backend's ID backend_stats.
type ServiceIDs struct {
	Name     string
	VIP      netip.Addr
	Port     int
	Protocol string
	VIPID    uint32
	Backends []BackendID
}

// BackendID is the id of one backend of a service. Ids belong to
// addresses: a backend address in several services has one id, so its
// counters are the sum over those services.
type BackendID struct {
	Address netip.Addr
	ID      uint32
}

// IDs returns the ids the programmer has assigned to services, in their
// order. A service or backend without an id (not programmed yet, or its
// programming failed) is left out, so only assigned ids are returned. The
// caller serializes it with Sync: Manager.IDs reads it under the lock that
// Manager holds around Sync.
func (p *Programmer) IDs(services []config.Service) []ServiceIDs {
	out := make([]ServiceIDs, 0, len(services))
	for _, s := range services {
		vid, ok := p.vipIDs[serviceKey{s.VIP, protoNum(s.Protocol), uint16(s.Port)}]
		if !ok {
			continue
		}
		ids := ServiceIDs{Name: s.Name, VIP: s.VIP, Port: s.Port, Protocol: s.Protocol, VIPID: vid, Backends: []BackendID{}}
		for _, b := range s.Backends {
			if id, ok := p.backends[b.Address]; ok {
				ids.Backends = append(ids.Backends, BackendID{Address: b.Address, ID: id})
			}
		}
		out = append(out, ids)
	}
	return out
}

// idSource is a Dataplane that assigns ids (a *Programmer).
type idSource interface {
	IDs(services []config.Service) []ServiceIDs
}

// IDs returns the data-plane ids of the configured services (see
// Programmer.IDs), read under the manager's lock, which is also held
// around every Programmer.Sync. It is nil when no Programmer writes the
// data plane.
func (m *Manager) IDs() []ServiceIDs {
	src, ok := m.opts.Dataplane.(idSource)
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return src.IDs(m.services)
}
