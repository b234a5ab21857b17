package daemon

import (
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/lb"
)

// lbConverter translates the configuration's [[services]] and [lb] into the
// load balancer's own types (lb imports no configuration). It keeps the
// translation of the services in force, so that a reload translates only
// the services it changes (config.ServicesDelta) and hands the manager the
// others as they were, which it then does not look at (lb.Manager.Update).
type lbConverter struct {
	last []lb.Service // of the configuration in force, in its order; nil: none
}

// config translates every service.
func (c *lbConverter) config(cfg *config.Config) lb.Config {
	out := lbConfig(cfg)
	out.Services = make([]lb.Service, len(cfg.Services))
	for i := range cfg.Services {
		out.Services[i] = lbService(&cfg.Services[i])
	}
	return out
}

// delta translates the services d changes from the configuration in
// force (old) to cfg, and carries the others over; ok is false when what
// the converter keeps is not old's.
func (c *lbConverter) delta(old, cfg *config.Config, d *config.ServicesDelta) (lb.Config, lb.Delta, bool) {
	if c.last == nil || len(c.last) != len(old.Services) {
		return lb.Config{}, lb.Delta{}, false
	}
	out := lbConfig(cfg)
	out.Services = make([]lb.Service, len(cfg.Services))
	for _, r := range d.Kept {
		copy(out.Services[r.NewAt:r.NewAt+r.Len], c.last[r.OldAt:r.OldAt+r.Len])
	}
	ld := lb.Delta{Changed: d.Changed, Removed: make([]string, len(d.Removed))}
	for _, i := range d.Changed {
		out.Services[i] = lbService(&cfg.Services[i])
	}
	for k, i := range d.Removed {
		ld.Removed[k] = c.last[i].Name
	}
	return out, ld, true
}

func lbConfig(cfg *config.Config) lb.Config {
	return lb.Config{MaglevTableSize: uint32(cfg.LB.MaglevTableSize), MaglevSlotsPerBackend: uint32(cfg.LB.MaglevSlotsPerBackend)}
}

func lbService(s *config.Service) lb.Service {
	out := lbServiceHead(s)
	out.Backends = lbBackends(s.Backends)
	return out
}

// lbServiceHead translates everything of a service but its backends.
func lbServiceHead(s *config.Service) lb.Service {
	hc := s.HealthCheck
	return lb.Service{
		Name:         s.Name,
		VIP:          s.VIP,
		Port:         s.Port,
		Protocol:     s.Protocol,
		AllowSources: s.AllowSources,
		HealthCheck: lb.HealthCheck{
			Type: hc.Type, Port: hc.Port, Path: hc.Path, StatusMin: hc.ExpectStatus.Min, StatusMax: hc.ExpectStatus.Max,
			Interval: hc.Interval.D(), Timeout: hc.Timeout.D(), Rise: hc.Rise, Fall: hc.Fall, Via: hc.Via,
		},
	}
}

func lbBackends(bs []config.Backend) []lb.Backend {
	out := make([]lb.Backend, len(bs))
	for i, b := range bs {
		out[i] = lb.Backend{Address: b.Address, Weight: uint32(b.Weight)}
	}
	return out
}
