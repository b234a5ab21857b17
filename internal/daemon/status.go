package daemon

import (
	"fmt"
	"os"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/version"
)

// Status implements api.Backend.
func (d *Daemon) Status() api.Status {
	d.mu.Lock()
	st := api.Status{
		Node:      d.cfg.Node.Name,
		Version:   version.Get(),
		State:     d.state,
		PID:       os.Getpid(),
		StartedAt: d.started,
		Config: api.ConfigStatus{
			File: d.cfg.Path, Generation: d.generation, Digest: d.cfg.Digest, LoadedAt: d.loadedAt,
		},
		LastReload: d.lastReload,
		LogLevel:   d.log.Level(),
	}
	pin := d.cfg.Datapath.PinPath
	d.mu.Unlock()
	st.Datapath = d.datapathStatus(pin)
	if sp := d.bgp.speaker(); sp != nil {
		st.BGPDrained = sp.Drained()
	}
	st.PodPrefixConflicts = d.bgp.podPrefixConflicts()
	if m := d.router.manager(); m != nil {
		st.Endpoints = map[string]int{}
		for _, ep := range m.List() {
			st.Endpoints[ep.State]++
		}
	}
	return st
}

func (d *Daemon) datapathStatus(pin string) api.Datapath {
	out := api.Datapath{PinPath: pin, Uplinks: []api.Uplink{}, Packets: map[string]api.Counter{}}
	if d.dp.dp == nil {
		return out
	}
	for _, u := range d.dp.dp.Uplinks() {
		out.Uplinks = append(out.Uplinks, api.Uplink{Name: u.Name, Ifindex: u.Ifindex, Mode: u.Mode, Adopted: u.Adopted, ProgramID: u.ProgramID,
			FlowAffinity: u.FlowAffinity, FlowAffinityFrom: u.FlowAffinityFrom})
	}
	ps, err := d.dp.dp.PipelineStats()
	if err != nil {
		out.Error = err.Error()
		return out
	}
	for fam, c := range ps.Families() {
		out.Packets[fam] = api.Counter{Packets: c.Packets, Bytes: c.Bytes}
	}
	return out
}

// Config implements api.Backend: the running configuration.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Config
}

// SetLogLevel implements api.Backend. The change lasts until a reload that
// changes [log] (only changed sections are applied) or a restart.
func (d *Daemon) SetLogLevel(level string) error {
	if err := d.log.SetLevel(level); err != nil {
		return err
	}
	d.log.Info("log level changed at run time", "level", level)
	return nil
}

// statusLine is the STATUS= text systemctl status shows.
func (d *Daemon) statusLine() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := fmt.Sprintf("running: config generation %d, %d uplink(s), %d service(s)",
		d.generation, len(d.cfg.Node.Uplinks), len(d.cfg.Services))
	if d.lastReload != nil && !d.lastReload.OK {
		s += "; last reload REJECTED, see airctl status"
	}
	return s
}
