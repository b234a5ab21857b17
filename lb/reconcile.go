package lb

import (
	"fmt"
	"slices"

	"github.com/aird-net/aird/lb/health"
)

// Apply makes the manager follow cfg, all or nothing: when the data plane
// refuses the change (a limit, a kernel error), the manager, its health
// checks and the data plane stay as they were. Only the services that are
// new, changed or removed are programmed (every one on the first Apply,
// which also removes what an earlier process left that cfg lacks). Health
// state of backends that stay is kept; new backends start healthy (after a
// restart: unknown, see Upsert.Pending). The manager keeps cfg (its
// slices included): the caller must not change it afterwards.
func (m *Manager) Apply(cfg Config) error {
	cfg.Services = slices.Clone(cfg.Services)
	m.mu.Lock()
	defer m.mu.Unlock()
	applied := func(s *Service) bool {
		old := m.svcs[s.Name]
		return m.started && old != nil && old.equal(s)
	}
	if err := cfg.validate(m.limits(), applied); err != nil {
		return err
	}
	if err := m.checkHealthSpecs(cfg.Services); err != nil {
		return err
	}
	first := !m.started
	resize := cfg.MaglevTableSize != m.cfg.MaglevTableSize || cfg.MaglevSlotsPerBackend != m.cfg.MaglevSlotsPerBackend
	next := make(map[string]*mservice, len(cfg.Services))
	ch := Change{Full: first, TableSize: cfg.MaglevTableSize, SlotsPerBackend: cfg.MaglevSlotsPerBackend}
	var upserted, removed []*mservice
	for i := range cfg.Services {
		s := &cfg.Services[i]
		old := m.svcs[s.Name]
		ns := &mservice{Service: *s, order: i}
		next[s.Name] = ns
		switch {
		case old != nil && old.Key() != s.Key():
			ch.Remove = append(ch.Remove, old.Key())
			removed = append(removed, old)
		case old != nil && !first && !resize && old.equal(s):
			ns.usable = old.usable
			continue
		}
		upserted = append(upserted, ns)
	}
	for name, old := range m.svcs {
		if next[name] == nil {
			ch.Remove = append(ch.Remove, old.Key())
			removed = append(removed, old)
		}
	}
	for _, s := range upserted {
		ch.Upsert = append(ch.Upsert, m.upsert(&s.Service, nil))
	}
	res, err := m.program(ch, upserted)
	if err != nil {
		return err
	}
	m.updateChecks(next, first)
	for _, s := range removed {
		m.setUsable(s, 0)
	}
	for _, s := range upserted {
		if old := m.svcs[s.Name]; old != nil && old.Key() == s.Key() {
			m.setUsable(old, 0)
		}
		m.setUsable(s, res[s.Key()])
	}
	m.svcs, m.cfg, m.started = next, cfg, true
	m.pruneDrained()
	m.publishServing()
	return nil
}

// checkHealthSpecs validates every service's check before anything
// changes (the spec's path does not matter to validity).
func (m *Manager) checkHealthSpecs(ss []Service) error {
	for i := range ss {
		s := &ss[i]
		if s.HealthCheck.Type == health.TypeNone || len(s.Backends) == 0 {
			continue
		}
		if err := directSpec(s, s.Backends[0]).Validate(); err != nil {
			return fmt.Errorf("lb: service %q: health check: %w", s.Name, err)
		}
	}
	return nil
}

// updateChecks moves the health checks from the running services to next:
// the targets of services that changed (or of all, when the probe path
// changed) are dropped and computed again; a target shared by several
// services is probed once. Called with m.mu held, after the data plane
// took the change (tunnelled checks carry backend ids).
func (m *Manager) updateChecks(next map[string]*mservice, first bool) {
	all := first || m.pathChanged
	var add, remove []health.Spec
	for name, old := range m.svcs {
		if ns := next[name]; !all && ns != nil && ns.equal(&old.Service) {
			continue
		}
		for _, spec := range old.specs {
			if u := m.users[spec]; u != nil {
				delete(u, name)
				if len(u) == 0 {
					delete(m.users, spec)
					remove = append(remove, spec)
				}
			}
		}
	}
	fallbacks := map[string]string{}
	for name, ns := range next {
		if old := m.svcs[name]; !all && old != nil && ns.equal(&old.Service) {
			ns.specs = old.specs
			if why, ok := m.fallbacks[name]; ok {
				fallbacks[name] = why
			}
			continue
		}
		ns.specs = nil
		for i := range ns.Backends {
			spec, ok := m.spec(&ns.Service, i)
			if !ok {
				continue
			}
			ns.specs = append(ns.specs, spec)
			if spec.Fallback != "" {
				fallbacks[name] = spec.Fallback
			}
			u := m.users[spec]
			if u == nil {
				u = map[string]struct{}{}
				m.users[spec] = u
				add = append(add, spec)
			}
			u[name] = struct{}{}
		}
	}
	// Validated before the change (checkHealthSpecs): Update cannot fail.
	if err := m.checks.Update(add, remove, first && m.restoring); err != nil {
		m.opts.Logger.Error("lb: health checks not updated", "err", err)
	}
	m.logFallbacks(fallbacks)
	m.pathChanged = false
}

// pruneDrained forgets drains of backends that left the configuration.
// Called with m.mu held.
func (m *Manager) pruneDrained() {
	changed := false
	for r := range m.drained {
		s := m.svcs[r.Service]
		if s == nil || !slices.ContainsFunc(s.Backends, func(b Backend) bool { return b.Address == r.Backend }) {
			delete(m.drained, r)
			changed = true
		}
	}
	if changed {
		if err := m.drains.save(m.drained); err != nil {
			m.opts.Logger.Warn("lb: drained backends not saved", "err", err)
		}
	}
}
