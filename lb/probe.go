package lb

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/lb/health"
)

// ProbePath is what the node offers health probes.
type ProbePath struct {
	// Tunnel is true when marked probes are tunnelled by the data plane
	// (the probe program is attached and the probe routing installed).
	Tunnel bool
	// Unavailable says why Tunnel is false; it becomes the fallback
	// reason of checks configured for the tunnel.
	Unavailable string
	// Sources are the node's underlay addresses: a tunnelled probe
	// leaves from the first one of its VIP's family.
	Sources []netip.Addr
}

func (p ProbePath) equal(o ProbePath) bool {
	return p.Tunnel == o.Tunnel && p.Unavailable == o.Unavailable && slices.Equal(p.Sources, o.Sources)
}

// SetProbePath tells the manager how probes may travel. It takes effect
// at the next Apply.
func (m *Manager) SetProbePath(p ProbePath) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !p.equal(m.probePath) {
		m.probePath, m.pathChanged = p, true
	}
}

// spec returns the health check of backend i of s, false when it has
// none. A check goes through the tunnel unless it is configured "direct"
// or the tunnel cannot carry it; then it goes direct and says why
// (Spec.Fallback). A tunnelled check is per (VIP, backend); a direct one
// is the same target for every service checking that backend alike, and
// is probed once. Called with m.mu held.
func (m *Manager) spec(s *Service, i int) (health.Spec, bool) {
	if s.HealthCheck.Type == health.TypeNone {
		return health.Spec{}, false
	}
	b := s.Backends[i]
	spec := directSpec(s, b)
	if s.HealthCheck.Via == health.ViaDirect {
		return spec, true
	}
	if ts, why := m.tunnelSpec(spec, s, b); why == "" {
		return ts, true
	} else {
		spec.Fallback = why
	}
	return spec, true
}

// directSpec is the check of backend b of s sent to the backend's own
// address.
func directSpec(s *Service, b Backend) health.Spec {
	hc := s.HealthCheck
	spec := health.Spec{
		Type:      hc.Type,
		Dest:      netip.AddrPortFrom(b.Address, uint16(hc.Port)),
		Path:      hc.Path,
		StatusMin: hc.StatusMin,
		StatusMax: hc.StatusMax,
		Interval:  hc.Interval,
		Timeout:   hc.Timeout,
		Rise:      hc.Rise,
		Fall:      hc.Fall,
		Via:       health.ViaDirect,
	}
	if hc.Type == health.TypeHTTP {
		spec.Host = s.VIP.String() // only HTTP sends it: TCP checks of a backend stay one target
	}
	return spec
}

// tunnelSpec turns spec into a tunnelled check (to the VIP, from the
// underlay address of the VIP's family, marked with b's backend id), or
// says why it cannot be. Called with m.mu held.
func (m *Manager) tunnelSpec(spec health.Spec, s *Service, b Backend) (health.Spec, string) {
	if !m.probePath.Tunnel {
		why := m.probePath.Unavailable
		if why == "" {
			why = "the data plane cannot tunnel probes"
		}
		return spec, why
	}
	var src netip.Addr
	for _, a := range m.probePath.Sources {
		if a.Is4() == s.VIP.Is4() {
			src = a
			break
		}
	}
	if !src.IsValid() {
		fam := "IPv6"
		if s.VIP.Is4() {
			fam = "IPv4"
		}
		return spec, fmt.Sprintf("node.underlay has no %s address to send probes for %s from", fam, s.VIP)
	}
	if m.ids == nil {
		return spec, "no data plane programs backend ids"
	}
	id, ok := m.ids.Backend(b.Address)
	if !ok {
		return spec, fmt.Sprintf("backend %s has no id in the data plane", b.Address)
	}
	spec.Dest = netip.AddrPortFrom(s.VIP, uint16(s.HealthCheck.Port))
	spec.Source = src
	spec.Host = s.VIP.String()
	spec.Mark = bpf.ProbeMark(id)
	spec.Via = health.ViaTunnel
	return spec, ""
}
