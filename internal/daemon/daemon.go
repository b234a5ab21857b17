package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/logging"
	"github.com/aird-net/aird/internal/metrics"
	"github.com/aird-net/aird/internal/version"
)

// Options configure a daemon run.
type Options struct {
	ConfigPath string
	LogOutput  io.Writer // default os.Stderr
}

func (o *Options) validate() error {
	if o.ConfigPath == "" {
		return errors.New("no configuration file given")
	}
	if o.LogOutput == nil {
		o.LogOutput = os.Stderr
	}
	return nil
}

// Daemon is one running aird.
type Daemon struct {
	opts    Options
	log     *logging.Logger
	notify  notifier
	metrics *metrics.Registry
	api     *api.Server
	dp      *datapathComponent
	ipam    *ipamComponent
	router  *routerComponent
	lb      *lbComponent
	bgp     *bgpComponent
	comps   []component
	reloads chan reloadRequest
	loader  *config.Loader // keeps the included files' services for the next reload
	snap    *configSnapshot
	started time.Time

	mu         sync.Mutex // guards the fields below, read by API handlers
	state      string
	cfg        *config.File
	generation int
	loadedAt   time.Time
	lastReload *api.ReloadResult
}

// Run loads the configuration, starts aird and serves until ctx is done or
// SIGTERM/SIGINT arrives. SIGHUP reloads. A configuration that does not load
// is returned as the error (a config.Errors listing every problem).
func Run(ctx context.Context, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	loader := &config.Loader{}
	snap := newConfigSnapshot()
	file, fromSnap, err := snap.load(loader, opts.ConfigPath)
	if err != nil {
		return err
	}
	log, err := logging.New(opts.LogOutput, file.Log.Level, file.Log.Format)
	if err != nil {
		return err
	}
	d := &Daemon{
		opts:    opts,
		log:     log,
		notify:  notifier{log: log.Logger},
		metrics: metrics.New(version.Get()),
		reloads: make(chan reloadRequest),
		loader:  loader,
		snap:    snap,
		started: time.Now(),
		state:   api.StateStarting,
	}
	d.api = api.NewServer(d, log.With("component", "api"))
	d.dp = &datapathComponent{log: log.Logger}
	d.ipam = &ipamComponent{log: log.With("component", "ipam")}
	d.router = &routerComponent{log: log.With("component", "router"), dp: d.dp, ipam: d.ipam}
	d.bgp = &bgpComponent{log: log.With("component", "bgp")}
	d.router.onHosts = d.bgp.setEndpointHosts
	d.lb = &lbComponent{log: log.With("component", "lb"), onServing: d.bgp.setServing, dp: d.dp}
	d.comps = []component{
		&logComponent{l: log},
		d.dp,
		d.ipam,
		d.router,
		d.lb,
		&uplinksComponent{log: log.Logger, dp: d.dp},
		d.bgp,
		&metricsComponent{reg: d.metrics, log: log.With("component", "metrics")},
		&apiComponent{srv: d.api},
	}
	d.metrics.MustRegister(d.collectors()...)
	if fromSnap {
		log.Info("configuration taken from its snapshot (the file, the build and the host name are unchanged)", "snapshot", snap.path)
	}
	return d.run(ctx, file)
}

// collectors are the metrics of the components, read at scrape time, that
// the registry holds besides its own (metrics.New).
func (d *Daemon) collectors() []prometheus.Collector {
	return []prometheus.Collector{newDatapathCollector(d.dp), newLBCollector(d.lb), bgpCollector{c: d.bgp},
		newIPAMCollector(d.ipam), newRouterCollector(d.router), newPodConflictCollector(d.bgp)}
}

func (d *Daemon) run(ctx context.Context, file *config.File) error {
	d.log.Info("aird starting", "version", version.Get().String(), "config", file.Path, "node", file.Node.Name)
	d.notify.status("starting")
	if err := d.start(file); err != nil {
		d.log.Error("start failed", "err", err)
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, restartSignal)
	defer signal.Stop(sigs)
	d.setState(api.StateRunning)
	d.notify.ready(d.statusLine())
	d.log.Info("aird ready", "generation", 1, "uplinks", file.Node.Uplinks)
	d.snap.report(d.log.Logger)
	// After READY, so as not to delay it: the Loader makes what it keeps
	// for the first reload (a large file's index across its chunks), and
	// then the start's memory and that work's garbage go back to the
	// kernel (0.1-0.4 s of CPU at 10,000 services).
	go func() {
		d.loader.Prepare()
		returnParseMemory()
	}()

	var tick <-chan time.Time
	if iv := d.notify.watchdogInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
		d.notify.watchdog()
	}
	for {
		select {
		case <-ctx.Done():
			return d.stop(nil)
		case s := <-sigs:
			switch {
			case s == syscall.SIGHUP:
				d.reload("SIGHUP")
				continue
			case s == restartSignal && underSystemd():
				d.log.Warn("ignoring " + s.String() + " under systemd: systemctl restart aird restarts keeping the routes, systemctl stop withdraws them")
				continue
			}
			return d.stop(s)
		case req := <-d.reloads:
			req.reply <- d.reload("api")
		case <-tick:
			// Pinged from the main loop: a wedged loop stops the pings and
			// systemd restarts aird.
			d.notify.watchdog()
		}
	}
}

// start brings every component up against the first configuration; if one
// fails, those already started are closed again.
func (d *Daemon) start(file *config.File) error {
	// The configuration being started is the daemon's from the outset: the
	// API component (the last to start) serves Status and Config, which
	// read it, as soon as it listens.
	now := time.Now()
	d.mu.Lock()
	d.cfg, d.generation, d.loadedAt = file, 1, now
	d.mu.Unlock()
	for i, c := range d.comps {
		if err := c.apply(nil, file.Config); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = d.comps[j].close(intentRestart)
			}
			d.shutdownAPI()
			return fmt.Errorf("start %s: %w", c.name(), err)
		}
	}
	d.metrics.ConfigLoaded(now, 1, false)
	return nil
}

// stop leaves the data plane in place: see the package comment.
func (d *Daemon) stop(sig os.Signal) error {
	intent, detail := stopIntentFor(context.Background(), sig)
	why := "context done"
	if sig != nil {
		why = sig.String()
	}
	d.log.Info("aird stopping", "reason", why, "intent", string(intent), "intent_source", detail)
	d.setState(api.StateStopping)
	d.notify.stopping()
	var errs []error
	for i := len(d.comps) - 1; i >= 0; i-- {
		if err := d.comps[i].close(intent); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", d.comps[i].name(), err))
		}
	}
	d.shutdownAPI()
	d.mu.Lock()
	running := d.cfg
	d.mu.Unlock()
	d.snap.saveRunning(running, d.log.Logger)
	err := errors.Join(errs...)
	if err != nil {
		d.log.Error("stopped with errors", "err", err)
	} else {
		d.logStopped()
	}
	return err
}

// logStopped says what aird leaves behind and how to remove it.
func (d *Daemon) logStopped() {
	for _, c := range d.comps {
		if dc, ok := c.(*datapathComponent); ok && dc.dp != nil && !dc.dp.PinsOutliveProcess() {
			d.log.Info("aird stopped; its data plane was pinned in a bpffs private to its mount namespace, so it detaches as aird exits")
			return
		}
	}
	d.log.Info("aird stopped; the XDP data plane stays attached and pinned, so it keeps forwarding and the next start "+
		"adopts it; `aird --cleanup` detaches and removes it", "pin_path", d.pinPath(), "cleanup", d.cleanupCommand())
}

func (d *Daemon) pinPath() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg == nil {
		return config.DefaultPinPath
	}
	return d.cfg.Datapath.PinPath
}

// cleanupCommand is the command that detaches this aird's data plane.
func (d *Daemon) cleanupCommand() string {
	if d.opts.ConfigPath == config.DefaultConfigPath {
		return "aird --cleanup"
	}
	return "aird --cleanup --config " + d.opts.ConfigPath
}

func (d *Daemon) shutdownAPI() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = d.api.Shutdown(ctx)
}

func (d *Daemon) setState(s string) {
	d.mu.Lock()
	d.state = s
	d.mu.Unlock()
}
