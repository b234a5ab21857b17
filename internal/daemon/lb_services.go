package daemon

import (
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/lb"
)

// lbConverter translates the configuration's [[services]] and [lb] into the
// load balancer's own types (lb imports no configuration). It
// reuses its last translation of a service's backends when they are the
// very slice it translated (a loaded configuration is immutable, and the
// config.Loader hands an unchanged file's services on as they were): a
// reload of one service among thousands translates that one, and the
// manager then compares unchanged services' backends in constant time.
type lbConverter struct {
	last map[string]translated // by service name
}

type translated struct {
	src []config.Backend
	out []lb.Backend
}

func (c *lbConverter) config(cfg *config.Config) lb.Config {
	out := lb.Config{Services: make([]lb.Service, len(cfg.Services)), MaglevTableSize: uint32(cfg.LB.MaglevTableSize),
		MaglevSlotsPerBackend: uint32(cfg.LB.MaglevSlotsPerBackend)}
	next := make(map[string]translated, len(cfg.Services))
	for i := range cfg.Services {
		s := &cfg.Services[i]
		t, ok := c.last[s.Name]
		if !ok || !sameSlice(t.src, s.Backends) {
			t = translated{src: s.Backends, out: lbBackends(s.Backends)}
		}
		next[s.Name] = t
		out.Services[i] = lbServiceHead(s)
		out.Services[i].Backends = t.out
	}
	c.last = next
	return out
}

// sameSlice reports whether a and b are the same slice: the same array
// and length.
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
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
