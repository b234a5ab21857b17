package daemon

import (
	"errors"
	"log/slog"
	"slices"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/datapath"
)

// datapathComponent follows [datapath] and node.uplinks: it loads the XDP
// pipeline (adopting pinned maps and links from an earlier process) and
// keeps it attached to exactly the configured uplinks.
type datapathComponent struct {
	log *slog.Logger
	dp  *datapath.Datapath
}

func (c *datapathComponent) name() string { return "datapath" }
func (c *datapathComponent) sections() []string {
	return []string{config.SectionDatapath, config.SectionNode, config.SectionLB}
}

func (c *datapathComponent) apply(old, new *config.Config) error {
	if c.dp == nil {
		dp, err := datapath.Open(datapath.Options{PinPath: new.Datapath.PinPath, XDPMode: new.Datapath.XDPMode, Logger: c.log,
			MaglevTableSize: uint32(new.LB.MaglevTableSize), ConntrackSize: uint32(new.LB.ConntrackSize)})
		if err != nil {
			return err
		}
		c.dp = dp
	} else if old != nil && (old.Datapath.PinPath != new.Datapath.PinPath || old.Datapath.XDPMode != new.Datapath.XDPMode) {
		return errors.New("datapath.pin-path and datapath.xdp-mode take effect at restart, not on reload: restore them or restart aird")
	} else if old != nil && (old.LB.MaglevTableSize != new.LB.MaglevTableSize || old.LB.ConntrackSize != new.LB.ConntrackSize) {
		return errors.New("lb.maglev-table-size and lb.conntrack-size size BPF maps at load, so they take effect at restart: restore them or restart aird")
	}
	uplinks := old == nil || !slices.Equal(old.Node.Uplinks, new.Node.Uplinks)
	if uplinks {
		if err := c.dp.SetUplinks(new.Node.Uplinks); err != nil {
			return err
		}
		for _, u := range c.dp.Uplinks() {
			c.log.Info("xdp pipeline attached", "uplink", u.Name, "mode", u.Mode, "adopted", u.Adopted, "prog_id", u.ProgramID)
		}
	}
	if uplinks || old.Datapath.Forwarding != new.Datapath.Forwarding {
		return forwarding{log: c.log, root: procSys}.apply(new.Datapath.Forwarding, new.Node.Uplinks)
	}
	return nil
}

func (c *datapathComponent) close(stopIntent) error {
	if c.dp == nil {
		return nil
	}
	return c.dp.Close()
}
