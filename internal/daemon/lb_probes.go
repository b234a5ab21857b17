package daemon

import (
	"log/slog"
	"slices"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/datapath"
	"github.com/aird-net/aird/lb"
	"github.com/aird-net/aird/lb/health"
)

// lbProbes sets up the tunnelled path of health probes: the probe program
// on lo's egress (datapath.AttachProbeEgress) and the policy routing that
// sends marked probes there (datapath.InstallProbeRouting). Both are set up
// only when a service wants tunnelled checks, checked again at every apply
// (both steps are idempotent, so a rule deleted by hand comes back at the
// next reload), and left in place across a restart like the rest of the
// data plane. An intended stop removes the routing: nothing aird leaves
// running needs it, and the node should not keep policy routing of a
// stopped service. The program stays attached (it passes every unmarked
// packet); aird --cleanup removes both.
type lbProbes struct {
	log   *slog.Logger
	dp    *datapath.Datapath // nil: no data plane
	ready bool               // program attached and routing installed by this process
}

// path returns what the node offers probes under cfg, setting the tunnel
// up when a service needs it. A failure is logged and makes the checks go
// direct (with the reason in their status) rather than failing the apply:
// health checking must go on.
func (p *lbProbes) path(cfg *config.Config) lb.ProbePath {
	pp := lb.ProbePath{Sources: slices.Clone(cfg.Node.Underlay)}
	switch {
	case p.dp == nil:
		pp.Unavailable = "no data plane to tunnel probes"
		return pp
	case len(cfg.Node.Uplinks) == 0:
		// The probe program routes like a packet arriving on an uplink.
		pp.Unavailable = "no node.uplinks: there is no data path to tunnel probes through"
		return pp
	}
	if !wantsTunnel(cfg.Services) {
		pp.Tunnel = p.ready
		return pp
	}
	if err := p.setup(); err != nil {
		p.log.Warn("health probes cannot take the tunnel; they go directly to the backends", "err", err)
		pp.Unavailable = "probe tunnel not set up: " + err.Error()
		return pp
	}
	pp.Tunnel = true
	return pp
}

func (p *lbProbes) setup() error {
	st, err := p.dp.AttachProbeEgress()
	if err != nil {
		return err
	}
	if err := datapath.InstallProbeRouting(); err != nil {
		return err
	}
	if !p.ready {
		p.log.Info("health probes are tunnelled", "interface", st.Interface, "adopted", st.Adopted,
			"link_id", st.LinkID, "fib_ifindex", st.FIBIfindex, "table", datapath.ProbeTable,
			"rule_priority", datapath.ProbeRulePriority)
	}
	p.ready = true
	return nil
}

// close removes the probe routing on an intended stop - also routing an
// earlier process installed when this one never needed it.
func (p *lbProbes) close(intent stopIntent) error {
	if intent != intentStop || p.dp == nil {
		return nil
	}
	p.ready = false
	return datapath.RemoveProbeRouting()
}

// wantsTunnel reports whether a service has a check that goes through the
// tunnel.
func wantsTunnel(services []config.Service) bool {
	for _, s := range services {
		if s.HealthCheck.Type != health.TypeNone && s.HealthCheck.Via != health.ViaDirect && len(s.Backends) > 0 {
			return true
		}
	}
	return false
}
