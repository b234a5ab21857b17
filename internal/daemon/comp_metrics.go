package daemon

import (
	"log/slog"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/metrics"
)

// metricsComponent follows [metrics]. A new listen address is bound before
// the old one is closed, so a busy port fails the reload instead of losing
// the endpoint; a new path on the same address re-binds that address.
type metricsComponent struct {
	reg *metrics.Registry
	log *slog.Logger
	srv *metrics.Server
}

func (c *metricsComponent) name() string       { return "metrics" }
func (c *metricsComponent) sections() []string { return []string{config.SectionMetrics} }

func (c *metricsComponent) listen(m config.Metrics) (*metrics.Server, error) {
	if m.Listen == "" {
		return nil, nil
	}
	s, err := metrics.Listen(c.reg, m.Listen, m.Path, c.log)
	if err == nil {
		c.log.Info("metrics endpoint listening", "addr", s.Addr(), "path", m.Path)
	}
	return s, err
}

func (c *metricsComponent) apply(old, new *config.Config) error {
	sameAddr := c.srv != nil && old != nil && old.Metrics.Listen == new.Metrics.Listen
	if sameAddr {
		_ = c.srv.Close()
		c.srv = nil
	}
	next, err := c.listen(new.Metrics)
	if err != nil {
		if sameAddr {
			c.srv, _ = c.listen(old.Metrics)
		}
		return err
	}
	if c.srv != nil {
		_ = c.srv.Close()
	}
	c.srv = next
	return nil
}

func (c *metricsComponent) close(stopIntent) error {
	if c.srv == nil {
		return nil
	}
	return c.srv.Close()
}
