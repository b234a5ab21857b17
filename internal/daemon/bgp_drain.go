package daemon

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aird-net/aird/internal/api"
)

// BGPDrain implements api.BGPBackend. A drain announces every route with
// GRACEFUL_SHUTDOWN (and the configured prepends) at once, and withdraws
// them after bgp.drain.wait in the background; undrain cancels a drain in
// progress and announces the routes normally again. The drain lasts until
// undone or until the speaker restarts.
func (d *Daemon) BGPDrain(drain bool) (api.BGPDrain, error) {
	c := d.bgp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sp == nil {
		return api.BGPDrain{}, fmt.Errorf("bgp: %w (no [bgp] section)", api.ErrNotConfigured)
	}
	if !drain {
		if c.drainCancel != nil {
			c.drainCancel()
			c.drainCancel = nil
		}
		if err := c.sp.Undrain(); err != nil {
			return api.BGPDrain{}, err
		}
		c.log.Info("bgp undrained: routes announced normally")
		return api.BGPDrain{Drained: false}, nil
	}
	wait := c.cfg.BGP.Drain.Wait
	if c.sp.Drained() {
		return api.BGPDrain{Drained: true, Wait: wait.String()}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.drainCancel = cancel
	sp, log := c.sp, c.log
	started := make(chan struct{})
	go func() {
		close(started)
		if err := sp.Drain(ctx); err != nil && ctx.Err() == nil {
			log.Error("bgp drain", "err", err)
			return
		}
		if ctx.Err() == nil {
			log.Info("bgp drain finished: routes withdrawn")
		}
	}()
	<-started
	c.log.Info("bgp draining: GRACEFUL_SHUTDOWN announced", "withdraw_after", wait.String())
	return api.BGPDrain{Drained: true, Wait: wait.String()}, nil
}

// bgpCollector exposes the metrics of whichever speaker runs, read at
// scrape time (an unchecked collector: the speaker can come and go).
type bgpCollector struct{ c *bgpComponent }

func (b bgpCollector) Describe(chan<- *prometheus.Desc) {}

func (b bgpCollector) Collect(ch chan<- prometheus.Metric) {
	if sp := b.c.speaker(); sp != nil {
		sp.Collector().Collect(ch)
	}
}
