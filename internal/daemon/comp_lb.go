package daemon

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/lb"
)

// lbComponent follows [[services]]: health checks and the set of serving
// VIPs, which it hands to onServing (the BGP component).
type lbComponent struct {
	log       *slog.Logger
	onServing func([]netip.Addr)
	m         *lb.Manager
}

func (c *lbComponent) name() string       { return "lb" }
func (c *lbComponent) sections() []string { return []string{config.SectionServices} }

func (c *lbComponent) apply(old, new *config.Config) error {
	if c.m == nil {
		m, err := lb.New(context.Background(), lb.Options{Logger: c.log, OnServing: c.onServing})
		if err != nil {
			return err
		}
		c.m = m
	}
	return c.m.Apply(new.Services)
}

func (c *lbComponent) close(stopIntent) error {
	if c.m != nil {
		c.m.Close()
	}
	return nil
}
