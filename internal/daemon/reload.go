package daemon

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
)

type reloadRequest struct {
	reply chan api.ReloadResult
}

// Reload asks the main loop to reload and waits for the outcome. It is the
// API's entry point; SIGHUP takes the same path inside the loop.
func (d *Daemon) Reload(ctx context.Context) api.ReloadResult {
	req := reloadRequest{reply: make(chan api.ReloadResult, 1)}
	select {
	case d.reloads <- req:
	case <-ctx.Done():
		return api.ReloadResult{Time: time.Now(), Error: "reload not started: " + ctx.Err().Error()}
	}
	return <-req.reply // the loop always answers once it took the request
}

// reload re-reads the file and applies the difference as a transaction.
// Whatever happens, systemd is told READY=1 again: aird keeps serving.
func (d *Daemon) reload(source string) api.ReloadResult {
	d.notify.reloading()
	d.setState(api.StateReloading)

	d.mu.Lock()
	cur, gen := d.cfg, d.generation
	d.mu.Unlock()

	res := api.ReloadResult{Time: time.Now(), Generation: gen}
	host := hostname() // what the load defaults node.name to, for the snapshot made at stop
	next, err := d.loader.Load(cur.Path)
	if err == nil {
		d.ipam.fillKnownVIPs(next.Config)
		sections, services := config.DiffFiles(cur, next)
		res.Changed = sections
		err = d.applyAll(cur.Config, next.Config, change{sections: sections, services: &services})
	}
	if err != nil {
		d.reloadFailed(&res, source, err)
	} else {
		d.reloadSucceeded(&res, source, next)
		d.snap.host = host
	}
	d.mu.Lock()
	d.lastReload = &res
	d.mu.Unlock()
	if next == nil || next.Parsed > reloadGarbage { // a failed load: whatever it parsed
		returnParseMemory()
	}
	d.setState(api.StateRunning) // before READY=1: whoever hears it sees the daemon running
	d.notify.ready(d.statusLine())
	go d.loader.Prepare() // for the next reload
	return res
}

// applyAll applies new to every affected component (in proportion to the
// change where the component can); on error it rolls back the components
// already changed, newest first.
func (d *Daemon) applyAll(old, new *config.Config, ch change) error {
	var done []component
	for _, c := range d.comps {
		if !affected(c, ch.sections) {
			continue
		}
		var err error
		if ca, ok := c.(changeApplier); ok {
			err = ca.applyChange(old, new, ch)
		} else {
			err = c.apply(old, new)
		}
		if err != nil {
			for i := len(done) - 1; i >= 0; i-- {
				if rerr := done[i].apply(new, old); rerr != nil {
					d.log.Error("rollback failed", "component", done[i].name(), "err", rerr)
				}
			}
			return fmt.Errorf("apply %s: %w", c.name(), err)
		}
		done = append(done, c)
	}
	return nil
}

func (d *Daemon) reloadFailed(res *api.ReloadResult, source string, err error) {
	res.OK = false
	var errs config.Errors
	if errors.As(err, &errs) {
		res.Errors = errs
		res.Error = fmt.Sprintf("configuration rejected, %d error(s); the running configuration (generation %d) is unchanged:\n%s",
			len(errs), res.Generation, errs.Error())
	} else {
		res.Error = fmt.Sprintf("reload failed; the running configuration (generation %d) is unchanged: %v", res.Generation, err)
	}
	d.metrics.ReloadFailed()
	d.log.Error("reload rejected", "source", source, "generation", res.Generation, "err", oneLine(err))
	for _, e := range errs {
		d.log.Error("config error", "file", e.File, "line", e.Line, "column", e.Col, "key", e.Key, "msg", e.Msg)
	}
}

func (d *Daemon) reloadSucceeded(res *api.ReloadResult, source string, next *config.File) {
	now := time.Now()
	d.mu.Lock()
	d.generation++
	d.cfg, d.loadedAt = next, now
	res.Generation = d.generation
	d.mu.Unlock()
	res.OK = true
	d.metrics.ConfigLoaded(now, res.Generation, true)
	d.log.Info("reloaded", "source", source, "generation", res.Generation, "changed", strings.Join(res.Changed, ","),
		"parsed_bytes", next.Parsed)
}

// returnParseMemory hands the memory of a load back to the kernel: parsing
// a large configuration (10,000 services of 100 backends is 16 MB of TOML)
// and programming it leave hundreds of megabytes of garbage that the Go
// runtime would otherwise return only slowly, so aird's RSS would stay at
// the load's peak long after it.
func returnParseMemory() { debug.FreeOSMemory() }

// reloadGarbage is how many bytes of configuration a reload must parse
// to return the memory at once: parsing takes tens of times the file's
// size. Below, the runtime's background scavenger returns it, and the
// reload does not pay for a collection (about 0.1 s at 10,000 services);
// a reload that re-reads a 16 MB file does.
const reloadGarbage = 1 << 20

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
