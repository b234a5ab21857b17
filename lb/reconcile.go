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
// slices included): the caller must not change it afterwards. Apply looks
// at every service; Update looks only at those a Delta names.
func (m *Manager) Apply(cfg Config) error {
	cfg.Services = slices.Clone(cfg.Services)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.apply(cfg)
}

// apply is Apply with m.mu held.
func (m *Manager) apply(cfg Config) error {
	applied := func(s *Service) bool {
		old := m.svcs[s.Name]
		return m.started && old != nil && old.equal(s)
	}
	if err := cfg.validate(m.limits(), applied); err != nil {
		return err
	}
	first := !m.started
	resize := cfg.MaglevTableSize != m.cfg.MaglevTableSize || cfg.MaglevSlotsPerBackend != m.cfg.MaglevSlotsPerBackend
	all := first || resize || m.pathChanged
	next := make(map[string]*mservice, len(cfg.Services))
	ts := make([]transition, 0, len(cfg.Services)+len(m.svcs))
	for i := range cfg.Services {
		s := &cfg.Services[i]
		next[s.Name] = &mservice{Service: *s}
		ts = append(ts, transition{name: s.Name, old: m.svcs[s.Name], new: next[s.Name]})
	}
	for name, old := range m.svcs {
		if next[name] == nil {
			ts = append(ts, transition{name: name, old: old})
		}
	}
	if err := m.change(cfg, ts, first, all); err != nil {
		return err
	}
	m.svcs = next
	m.keys = make(map[ServiceKey]string, len(next))
	for name, s := range next {
		m.keys[s.Key()] = name
	}
	m.fallbacks = nil
	for _, s := range next {
		if s.fallback != "" {
			if m.fallbacks == nil {
				m.fallbacks = map[string]string{}
			}
			m.fallbacks[s.Name] = s.fallback
		}
	}
	return nil
}

// transition is one service's move: from old (nil: new) to new (nil:
// removed).
type transition struct {
	name     string
	old, new *mservice
}

// change programs the transitions ts (of every service when all, of the
// changed ones otherwise: unchanged ones carry their state over) and
// moves the health checks, the serving state and cfg; the caller then
// updates m.svcs. Called with m.mu held.
func (m *Manager) change(cfg Config, ts []transition, first, all bool) error {
	if err := m.checkHealthSpecs(ts); err != nil {
		return err
	}
	ch := Change{Full: first, TableSize: cfg.MaglevTableSize, SlotsPerBackend: cfg.MaglevSlotsPerBackend, Checked: true}
	var upserted, removed []*mservice
	for _, t := range ts {
		switch {
		case t.new == nil:
			ch.Remove = append(ch.Remove, t.old.Key())
			removed = append(removed, t.old)
			continue
		case t.old != nil && t.old.Key() != t.new.Key():
			ch.Remove = append(ch.Remove, t.old.Key())
			removed = append(removed, t.old)
		case t.old != nil && !all && t.old.equal(&t.new.Service):
			t.new.usable = t.old.usable
			continue
		}
		upserted = append(upserted, t.new)
	}
	for _, s := range upserted {
		ch.Upsert = append(ch.Upsert, m.upsert(&s.Service, nil))
	}
	var res map[ServiceKey]uint32
	if ch.Full || len(ch.Upsert) > 0 || len(ch.Remove) > 0 { // a change of nothing touches nothing
		var err error
		if res, err = m.program(ch, upserted); err != nil {
			return err
		}
	}
	m.updateChecks(ts, first, all)
	for _, s := range removed {
		m.setUsable(s, 0)
	}
	for _, s := range upserted {
		if old := m.svcs[s.Name]; old != nil && old.Key() == s.Key() {
			m.setUsable(old, 0)
		}
		m.setUsable(s, res[s.Key()])
	}
	m.cfg, m.started = cfg, true
	m.pruneDrained(ts)
	m.publishServing()
	return nil
}

// checkHealthSpecs validates every service's check before anything
// changes (the spec's path does not matter to validity).
func (m *Manager) checkHealthSpecs(ts []transition) error {
	for _, t := range ts {
		if t.new == nil {
			continue
		}
		s := &t.new.Service
		if s.HealthCheck.Type == health.TypeNone || len(s.Backends) == 0 {
			continue
		}
		if err := directSpec(s, s.Backends[0]).Validate(); err != nil {
			return fmt.Errorf("lb: service %q: health check: %w", s.Name, err)
		}
	}
	return nil
}

// updateChecks moves the health checks of the services of ts from old to
// new: the targets of services that changed (or of all, when the probe
// path changed) are dropped and computed again; a target shared by
// several services is probed once. Called with m.mu held, after the data
// plane took the change (tunnelled checks carry backend ids).
func (m *Manager) updateChecks(ts []transition, first, all bool) {
	all = all || first || m.pathChanged
	var add, remove []health.Spec
	for _, t := range ts {
		if t.old == nil || (!all && t.new != nil && t.new.equal(&t.old.Service)) {
			continue
		}
		for _, spec := range t.old.specs {
			if u := m.users[spec]; u != nil {
				delete(u, t.name)
				if len(u) == 0 {
					delete(m.users, spec)
					remove = append(remove, spec)
				}
			}
		}
	}
	for _, t := range ts {
		ns := t.new
		if ns == nil {
			continue
		}
		if old := t.old; !all && old != nil && ns.equal(&old.Service) {
			ns.specs, ns.fallback = old.specs, old.fallback
			continue
		}
		ns.specs, ns.fallback = nil, ""
		for i := range ns.Backends {
			spec, ok := m.spec(&ns.Service, i)
			if !ok {
				continue
			}
			ns.specs = append(ns.specs, spec)
			if spec.Fallback != "" {
				ns.fallback = spec.Fallback
			}
			u := m.users[spec]
			if u == nil {
				u = map[string]struct{}{}
				m.users[spec] = u
				add = append(add, spec)
			}
			u[t.name] = struct{}{}
		}
		if ns.fallback != "" && m.fallbacks[t.name] != ns.fallback {
			m.opts.Logger.Warn("health checks of the service go directly to the backends, not through the tunnel",
				"service", t.name, "reason", ns.fallback)
		}
	}
	// Validated before the change (checkHealthSpecs): Update cannot fail.
	if err := m.checks.Update(add, remove, first && m.restoring); err != nil {
		m.opts.Logger.Error("lb: health checks not updated", "err", err)
	}
	m.pathChanged = false
}

// pruneDrained forgets drains of backends that left the services of ts.
// Called with m.mu held.
func (m *Manager) pruneDrained(ts []transition) {
	changed := false
	next := make(map[string]*mservice, len(ts))
	for _, t := range ts {
		next[t.name] = t.new
	}
	for r := range m.drained {
		s, touched := next[r.Service]
		if !touched {
			continue
		}
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
