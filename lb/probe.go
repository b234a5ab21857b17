package lb

import (
	"fmt"
	"net/netip"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/config"
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

// SetProbePath tells the manager how probes may travel. It takes effect
// at the next Apply.
func (m *Manager) SetProbePath(p ProbePath) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probePath = p
}

// probeIDSource assigns backend ids ahead of Sync (a *Programmer).
type probeIDSource interface {
	probeBackendID(a netip.Addr) (uint32, error)
}

// probeSpecs returns the health check of every backend of services, keyed
// by BackendKey. A check goes through the tunnel unless it is configured
// "direct" or the tunnel cannot carry it; then it goes direct and says why
// (Spec.Fallback, logged once per service and reason).
func (m *Manager) probeSpecs(services []config.Service) map[string]health.Spec {
	m.mu.Lock()
	defer m.mu.Unlock()
	specs := map[string]health.Spec{}
	fallbacks := map[string]string{}
	for _, s := range services {
		for _, b := range s.Backends {
			spec := directSpec(s, b)
			if s.HealthCheck.Type != health.TypeNone && s.HealthCheck.Via != health.ViaDirect {
				if ts, why := m.tunnelSpec(spec, s, b); why == "" {
					spec = ts
				} else {
					spec.Fallback = why
					fallbacks[s.Name] = why
				}
			}
			specs[BackendKey(s.Name, b.Address)] = spec
		}
	}
	for name, why := range fallbacks {
		if m.fallbacks[name] != why {
			m.opts.Logger.Warn("health checks of the service go directly to the backends, not through the tunnel",
				"service", name, "reason", why)
		}
	}
	m.fallbacks = fallbacks
	return specs
}

// directSpec is the check of backend b of s sent to the backend's own
// address.
func directSpec(s config.Service, b config.Backend) health.Spec {
	hc := s.HealthCheck
	spec := health.Spec{
		Type:      hc.Type,
		Dest:      netip.AddrPortFrom(b.Address, uint16(hc.Port)),
		Host:      s.VIP.String(),
		Path:      hc.Path,
		StatusMin: hc.ExpectStatus.Min,
		StatusMax: hc.ExpectStatus.Max,
		Interval:  hc.Interval.D(),
		Timeout:   hc.Timeout.D(),
		Rise:      hc.Rise,
		Fall:      hc.Fall,
	}
	if hc.Type != health.TypeNone {
		spec.Via = health.ViaDirect
	}
	return spec
}

// tunnelSpec turns spec into a tunnelled check (to the VIP, from the
// underlay address of the VIP's family, marked with b's backend id), or
// says why it cannot be. Called with m.mu held.
func (m *Manager) tunnelSpec(spec health.Spec, s config.Service, b config.Backend) (health.Spec, string) {
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
	ids, ok := m.opts.Dataplane.(probeIDSource)
	if !ok {
		return spec, "no data plane programs backend ids"
	}
	id, err := ids.probeBackendID(b.Address)
	if err != nil {
		return spec, fmt.Sprintf("no backend id for %s: %v", b.Address, err)
	}
	spec.Dest = netip.AddrPortFrom(s.VIP, uint16(s.HealthCheck.Port))
	spec.Source = src
	spec.Mark = bpf.ProbeMark(id)
	spec.Via = health.ViaTunnel
	return spec, ""
}
