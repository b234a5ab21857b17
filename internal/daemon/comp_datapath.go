package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/datapath"
)

// datapathComponent follows [datapath], [node] and [lb]: it loads the XDP
// pipeline (adopting pinned maps and links from an earlier process; the
// uplinks component attaches it, once the stages' maps are programmed),
// and writes the maps that
// belong to the whole pipeline: its settings, the node's addresses, its
// local addresses and tunnel sources (the latter two followed as the
// kernel's addresses change, addrFollower). The stages' own maps have
// their own writers (the lb component).
type datapathComponent struct {
	log   *slog.Logger
	dp    *datapath.Datapath
	addrs *addrFollower
}

func (c *datapathComponent) name() string { return "datapath" }
func (c *datapathComponent) sections() []string {
	return []string{config.SectionDatapath, config.SectionNode, config.SectionLB}
}

func (c *datapathComponent) apply(old, new *config.Config) error {
	if c.dp == nil {
		dp, err := datapath.Open(datapath.Options{PinPath: new.Datapath.PinPath, XDPMode: new.Datapath.XDPMode, Logger: c.log,
			MaxVIPs: uint32(new.LB.MaxVIPs), MaxBackends: uint32(new.LB.MaxBackends), ConntrackSize: uint32(new.LB.ConntrackSize)})
		if err != nil {
			return err
		}
		c.dp = dp
	} else if old != nil && (old.Datapath.PinPath != new.Datapath.PinPath || old.Datapath.XDPMode != new.Datapath.XDPMode) {
		return errors.New("datapath.pin-path and datapath.xdp-mode take effect at restart, not on reload: restore them or restart aird")
	} else if old != nil && (old.LB.MaxVIPs != new.LB.MaxVIPs || old.LB.MaxBackends != new.LB.MaxBackends || old.LB.ConntrackSize != new.LB.ConntrackSize) {
		return errors.New("lb.max-vips, lb.max-backends and lb.conntrack-size size BPF maps at load, so they take effect at restart: restore them or restart aird")
	}
	if err := c.dp.SetSettings(pipelineSettings(new)); err != nil {
		return fmt.Errorf("datapath: %w", err)
	}
	if err := c.dp.SetNodeAddrs(new.Node.Underlay); err != nil {
		return fmt.Errorf("datapath: %w", err)
	}
	if c.addrs == nil {
		c.addrs = newAddrFollower(c.log, c.dp)
		c.addrs.start()
	}
	if err := c.addrs.configure(new.Node.Uplinks, new.Datapath.TunnelSources); err != nil {
		return fmt.Errorf("datapath: %w", err)
	}
	return nil
}

// uplinksComponent attaches the pipeline the datapath component loaded to
// exactly the configured uplinks, and sets forwarding on them. It comes
// after the components that program the stages' maps (router, lb), so that
// a start - an upgrade whose new maps could not adopt the old ones, too -
// swaps the uplinks' program only once the new maps are programmed: no
// packet meets an empty table.
type uplinksComponent struct {
	log *slog.Logger
	dp  *datapathComponent
}

func (c *uplinksComponent) name() string { return "uplinks" }
func (c *uplinksComponent) sections() []string {
	return []string{config.SectionDatapath, config.SectionNode}
}

func (c *uplinksComponent) apply(old, new *config.Config) error {
	dp := c.dp.dp
	uplinks := old == nil || !slices.Equal(old.Node.Uplinks, new.Node.Uplinks)
	affinity := old == nil || !slices.Equal(old.Datapath.Uplink, new.Datapath.Uplink)
	if affinity {
		if err := dp.SetFlowAffinity(flowAffinity(new)); err != nil {
			return err
		}
	}
	if uplinks {
		if err := dp.SetUplinks(new.Node.Uplinks); err != nil {
			return err
		}
	}
	if uplinks || affinity {
		for _, u := range dp.Uplinks() {
			c.log.Info("xdp pipeline attached", "uplink", u.Name, "mode", u.Mode, "adopted", u.Adopted, "prog_id", u.ProgramID,
				"flow_affinity", u.FlowAffinity, "flow_affinity_from", u.FlowAffinityFrom)
		}
	}
	if uplinks || old.Datapath.Forwarding != new.Datapath.Forwarding {
		if err := (forwarding{log: c.log, root: procSys}).apply(new.Datapath.Forwarding, new.Node.Uplinks); err != nil {
			return err
		}
	}
	return nil
}

// flowAffinity is [[datapath.uplink]]'s flow-affinity by uplink name.
func flowAffinity(cfg *config.Config) map[string]string {
	out := make(map[string]string, len(cfg.Datapath.Uplink))
	for _, u := range cfg.Datapath.Uplink {
		out[u.Name] = u.FlowAffinity
	}
	return out
}

// close leaves the uplinks attached (the datapath component's close
// releases the handles).
func (c *uplinksComponent) close(stopIntent) error { return nil }

// pipelineHashSeed seeds the data plane's flow hash. It is the same on
// every node, so every load balancer behind one ECMP group picks the same
// backend for a flow.
const pipelineHashSeed = 0x61697264 // "aird"

// pipelineSettings derives the pipeline's settings from the configuration:
// outer sources from the underlay (or lb.encap-source-prefix{,4}), the
// too-big switch and the flood threshold.
func pipelineSettings(cfg *config.Config) bpf.Settings {
	s := bpf.Settings{HashSeed: pipelineHashSeed, DisablePTB: !cfg.LB.ICMPTooBig, FloodThreshold: uint32(cfg.LB.FloodThreshold)}
	for _, a := range cfg.Node.Underlay {
		if a.Is4() {
			s.Src4 = netip.PrefixFrom(a, 32)
		} else {
			s.Src6 = netip.PrefixFrom(a, 128)
		}
	}
	if p := cfg.LB.EncapSourcePrefix; p.IsValid() {
		s.Src6 = p
	}
	if p := cfg.LB.EncapSourcePrefix4; p.IsValid() {
		s.Src4 = p
	}
	return s
}

func (c *datapathComponent) close(stopIntent) error {
	if c.addrs != nil {
		c.addrs.stop()
	}
	if c.dp == nil {
		return nil
	}
	return c.dp.Close()
}
