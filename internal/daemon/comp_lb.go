package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/lb"
)

// lbComponent follows [[services]] and [lb]: health checks, the set of
// serving VIPs (handed to onServing, the BGP component) and the lb stage's
// maps in the XDP data plane.
type lbComponent struct {
	log       *slog.Logger
	onServing func([]netip.Addr)
	dp        *datapathComponent
	m         *lb.Manager
	prog      *lb.Programmer // the one writer of the lb stage's maps; nil without a data plane
	probes    lbProbes       // the tunnelled path of health probes
	conv      lbConverter    // [[services]] to the manager's services
}

func (c *lbComponent) name() string { return "lb" }
func (c *lbComponent) sections() []string {
	return []string{config.SectionServices, config.SectionLB, config.SectionNode}
}

func (c *lbComponent) apply(old, new *config.Config) error {
	if c.m == nil {
		if err := c.start(new); err != nil {
			return err
		}
	}
	c.m.SetProbePath(c.probes.path(new))
	cfg := c.conv.config(new)
	if err := c.programming(len(cfg.Services), func() error { return c.m.Apply(cfg) }); err != nil {
		return err
	}
	c.conv.last = cfg.Services
	return nil
}

// programming runs program, which leaves services services configured,
// with the data plane's lb stage active while it runs (SETTINGS_F_LB_IDLE
// cleared before the first service is written) and idle after it when
// none is left: the idle flag never hides a VIP.
func (c *lbComponent) programming(services int, program func() error) error {
	if c.dp == nil || c.dp.dp == nil {
		return program()
	}
	if services > 0 {
		if err := c.dp.dp.SetLBIdle(false); err != nil {
			return fmt.Errorf("lb: %w", err)
		}
	}
	if err := program(); err != nil {
		return err
	}
	if services == 0 {
		if err := c.dp.dp.SetLBIdle(true); err != nil {
			return fmt.Errorf("lb: %w", err)
		}
	}
	return nil
}

// applyChange programs a change of services alone in proportion to it:
// the changed services are translated, and the manager looks at those.
func (c *lbComponent) applyChange(old, new *config.Config, ch change) error {
	if c.m == nil || old == nil || ch.services == nil || !ch.only(c, config.SectionServices) {
		return c.apply(old, new)
	}
	cfg, d, ok := c.conv.delta(old, new, ch.services)
	if !ok {
		return c.apply(old, new)
	}
	c.m.SetProbePath(c.probes.path(new))
	if err := c.programming(len(cfg.Services), func() error { return c.m.Update(cfg, d) }); err != nil {
		return err
	}
	c.conv.last = cfg.Services
	return nil
}

// start takes the lb maps of the loaded data plane, adopting what an
// earlier aird programmed, and starts the manager that programs them.
// Drained backends are kept next to the API socket, where the BGP drain
// marker is.
func (c *lbComponent) start(cfg *config.Config) error {
	var dataplane lb.Dataplane
	c.probes = lbProbes{log: c.log}
	if c.dp != nil && c.dp.dp != nil {
		maps, err := c.dp.dp.LBMaps()
		if err != nil {
			return fmt.Errorf("lb: %w", err)
		}
		c.prog = lb.NewProgrammer(maps, lb.ProgrammerOptions{Logger: c.log, TableDir: c.dp.dp.TablePinDir()})
		dataplane = c.prog
		c.probes.dp = c.dp.dp
	}
	m, err := lb.New(context.Background(), lb.Options{Logger: c.log, OnServing: c.onServing, Dataplane: dataplane,
		StateDir: filepath.Dir(cfg.API.Socket)})
	if err != nil {
		c.prog = nil
		return err
	}
	c.m = m
	return nil
}

func (c *lbComponent) close(intent stopIntent) error {
	if c.m != nil {
		c.m.Close()
	}
	return c.probes.close(intent)
}
