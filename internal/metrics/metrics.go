package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aird-net/aird/internal/version"
)

// Registry holds every metric aird exports. It is not the global registry:
// tests and the daemon each own theirs.
type Registry struct {
	*prometheus.Registry
	reloads         *prometheus.CounterVec
	lastSuccess     prometheus.Gauge
	lastOK          prometheus.Gauge
	configGenerated prometheus.Gauge
}

// New returns a registry with build information, Go and process metrics and
// the configuration reload metrics registered.
func New(v version.Info) *Registry {
	r := &Registry{
		Registry: prometheus.NewRegistry(),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aird_config_reloads_total",
			Help: "Configuration reloads by result (success, failure).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aird_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load (start or reload).",
		}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aird_config_last_reload_successful",
			Help: "1 if the last reload attempt succeeded, 0 if it was rejected.",
		}),
		configGenerated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aird_config_generation",
			Help: "Generation of the running configuration: 1 at start, +1 per successful reload.",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "aird_build_info",
		Help:        "Build information of the running aird; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Revision, "goversion": v.GoVersion},
	})
	build.Set(1)
	// Both result labels exist from the start, so rate() works before the
	// first failure.
	r.reloads.WithLabelValues("success")
	r.reloads.WithLabelValues("failure")
	r.MustRegister(build, r.reloads, r.lastSuccess, r.lastOK, r.configGenerated,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// ConfigLoaded records a successful load (at start or on reload).
func (r *Registry) ConfigLoaded(at time.Time, generation int, reload bool) {
	if reload {
		r.reloads.WithLabelValues("success").Inc()
	}
	r.lastOK.Set(1)
	r.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	r.configGenerated.Set(float64(generation))
}

// ReloadFailed records a rejected reload.
func (r *Registry) ReloadFailed() {
	r.reloads.WithLabelValues("failure").Inc()
	r.lastOK.Set(0)
}
