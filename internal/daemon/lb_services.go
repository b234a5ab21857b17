package daemon

import (
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/lb"
)

// lbConfig translates the configuration's [[services]] and [lb] into the
// load balancer's own types (lb imports no configuration).
func lbConfig(cfg *config.Config) lb.Config {
	out := lb.Config{Services: make([]lb.Service, len(cfg.Services)), MaglevTableSize: uint32(cfg.LB.MaglevTableSize),
		MaglevSlotsPerBackend: uint32(cfg.LB.MaglevSlotsPerBackend)}
	for i := range cfg.Services {
		out.Services[i] = lbService(&cfg.Services[i])
	}
	return out
}

func lbService(s *config.Service) lb.Service {
	hc := s.HealthCheck
	out := lb.Service{
		Name:         s.Name,
		VIP:          s.VIP,
		Port:         s.Port,
		Protocol:     s.Protocol,
		AllowSources: s.AllowSources,
		Backends:     make([]lb.Backend, len(s.Backends)),
		HealthCheck: lb.HealthCheck{
			Type: hc.Type, Port: hc.Port, Path: hc.Path, StatusMin: hc.ExpectStatus.Min, StatusMax: hc.ExpectStatus.Max,
			Interval: hc.Interval.D(), Timeout: hc.Timeout.D(), Rise: hc.Rise, Fall: hc.Fall, Via: hc.Via,
		},
	}
	for i, b := range s.Backends {
		out.Backends[i] = lb.Backend{Address: b.Address, Weight: uint32(b.Weight)}
	}
	return out
}
