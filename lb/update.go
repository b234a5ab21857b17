package lb

import (
	"errors"
	"fmt"
)

// Delta names the services in which a Config differs from the one in
// force, so that Update looks at those alone.
type Delta struct {
	// Changed are the positions in Config.Services of the services that
	// are new or may differ from the service of their name in force.
	Changed []int
	// Removed names the services in force that the Config lacks.
	Removed []string
}

// Update makes the manager follow cfg as Apply does, all or nothing, in
// proportion to the change: d names the services that are new, changed or
// removed, and every other service of cfg must be the one in force (same
// name, VIP, port, protocol, backends and checks). A Config whose table
// sizes differ, a changed probe path, the first change, or a delta that
// names most of the services is applied as by Apply. The manager keeps
// cfg (its slices included): the caller must not change it afterwards.
func (m *Manager) Update(cfg Config, d Delta) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := cfg.validateSizes(); err != nil {
		return err
	}
	if !m.started || m.pathChanged || cfg.MaglevTableSize != m.cfg.MaglevTableSize ||
		cfg.MaglevSlotsPerBackend != m.cfg.MaglevSlotsPerBackend ||
		2*(len(d.Changed)+len(d.Removed)) > len(m.svcs) { // most services: the full pass is cheaper
		return m.apply(cfg)
	}
	ts, err := m.deltaTransitions(cfg, d)
	if err != nil {
		return err
	}
	if err := m.change(cfg, ts, false, false); err != nil {
		return err
	}
	for _, t := range ts {
		if t.old != nil && m.keys[t.old.Key()] == t.name {
			delete(m.keys, t.old.Key())
		}
		delete(m.svcs, t.name)
		delete(m.fallbacks, t.name)
	}
	for _, t := range ts {
		if t.new == nil {
			continue
		}
		m.svcs[t.name] = t.new
		m.keys[t.new.Key()] = t.name
		if t.new.fallback != "" {
			if m.fallbacks == nil {
				m.fallbacks = map[string]string{}
			}
			m.fallbacks[t.name] = t.new.fallback
		}
	}
	return nil
}

// deltaTransitions checks the services d names as Config.validate checks
// all (each on its own, names and keys against the services that stay,
// the vip ids) and returns their transitions. Called with m.mu held.
func (m *Manager) deltaTransitions(cfg Config, d Delta) ([]transition, error) {
	var errs []error
	ts := make([]transition, 0, len(d.Changed)+len(d.Removed))
	gone := make(map[string]bool, len(d.Removed))
	n := len(m.svcs)
	for _, name := range d.Removed {
		old := m.svcs[name]
		if old == nil || gone[name] {
			continue
		}
		gone[name] = true
		n--
		ts = append(ts, transition{name: name, old: old})
	}
	ups := make(map[string]*Service, len(d.Changed))
	for _, i := range d.Changed {
		if i < 0 || i >= len(cfg.Services) {
			return nil, fmt.Errorf("lb: a change names service %d of %d", i, len(cfg.Services))
		}
		s := &cfg.Services[i]
		old := m.svcs[s.Name]
		if old == nil || !old.equal(s) {
			if err := s.validate(); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		switch {
		case ups[s.Name] != nil || gone[s.Name]:
			errs = append(errs, fmt.Errorf("service %q: the name is used twice", s.Name))
			continue
		case old == nil:
			n++
		}
		ups[s.Name] = s
		ts = append(ts, transition{name: s.Name, old: old, new: &mservice{Service: *s}})
	}
	// A key stays with its holder unless the holder leaves or moves.
	holds := func(name string, k ServiceKey) bool {
		if u := ups[name]; u != nil {
			return u.Key() == k
		}
		return !gone[name] && m.svcs[name] != nil
	}
	keys := make(map[ServiceKey]string, len(ups))
	for _, t := range ts {
		if t.new == nil {
			continue
		}
		k := t.new.Key()
		if other, dup := keys[k]; dup {
			errs = append(errs, fmt.Errorf("service %q: %s is also service %q", t.name, k, other))
			continue
		}
		keys[k] = t.name
		if other, ok := m.keys[k]; ok && other != t.name && holds(other, k) {
			errs = append(errs, fmt.Errorf("service %q: %s is also service %q", t.name, k, other))
		}
	}
	if lim := m.limits(); lim.MaxVIPs > 0 && n > int(lim.MaxVIPs) {
		errs = append(errs, fmt.Errorf("%d services: the data plane has %d vip ids (lb.max-vips)", n, lim.MaxVIPs))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("lb: %w", err)
	}
	if n != len(cfg.Services) {
		return nil, fmt.Errorf("lb: the change leaves %d services, the configuration has %d: it does not name every change", n, len(cfg.Services))
	}
	return ts, nil
}
