package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/lb"
)

// lbHashSeed seeds the data plane's flow hash. It is the same on every
// node, so every load balancer behind one ECMP group picks the same backend
// for a flow.
const lbHashSeed = 0x61697264 // "aird"

// lbComponent follows [[services]] and [lb]: health checks, the set of
// serving VIPs (handed to onServing, the BGP component) and the lb stage's
// maps in the XDP data plane.
type lbComponent struct {
	log       *slog.Logger
	onServing func([]netip.Addr)
	dp        *datapathComponent
	m         *lb.Manager
	maps      []*ebpf.Map
	prog      *bpf.LB
	decap     []netip.Addr
	probes    lbProbes // the tunnelled path of health probes
}

func (c *lbComponent) name() string { return "lb" }
func (c *lbComponent) sections() []string {
	return []string{config.SectionServices, config.SectionLB, config.SectionNode}
}

func (c *lbComponent) apply(old, new *config.Config) error {
	if c.m == nil {
		if err := c.start(); err != nil {
			return err
		}
	}
	if err := c.settings(new); err != nil {
		return err
	}
	c.m.SetProbePath(c.probes.path(new))
	return c.m.Apply(new.Services)
}

// start opens the lb maps of the loaded data plane and the manager that
// programs them.
func (c *lbComponent) start() error {
	var dataplane lb.Dataplane
	c.probes = lbProbes{log: c.log}
	if c.dp != nil && c.dp.dp != nil {
		maps := map[string]*ebpf.Map{}
		for _, name := range bpf.LBMapNames() {
			m, err := c.dp.dp.Map(name)
			if err != nil {
				c.closeMaps()
				return fmt.Errorf("lb: %w", err)
			}
			maps[name] = m
			c.maps = append(c.maps, m)
		}
		lbm, err := bpf.LBMapsFrom(maps)
		if err != nil {
			c.closeMaps()
			return err
		}
		p, err := lb.NewProgrammer(lbm, c.dp.dp.MaglevTableSize())
		if err != nil {
			c.closeMaps()
			return err
		}
		c.prog, dataplane = bpf.NewLB(lbm, c.dp.dp.MaglevTableSize()), p
		c.probes.dp = c.dp.dp
	}
	m, err := lb.New(context.Background(), lb.Options{Logger: c.log, OnServing: c.onServing, Dataplane: dataplane})
	if err != nil {
		c.closeMaps()
		return err
	}
	c.m = m
	return nil
}

// settings writes the outer source addresses, the decap addresses (the
// node's underlay) and the too-big switch.
func (c *lbComponent) settings(cfg *config.Config) error {
	if c.prog == nil {
		return nil
	}
	s := bpf.Settings{HashSeed: lbHashSeed, DisablePTB: !cfg.LB.ICMPTooBig}
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
	if err := c.prog.SetSettings(s); err != nil {
		return fmt.Errorf("lb: %w", err)
	}
	for _, a := range cfg.Node.Underlay {
		if err := c.prog.AddDecapAddr(a); err != nil {
			return fmt.Errorf("lb: %w", err)
		}
	}
	for _, a := range c.decap {
		if !slices.Contains(cfg.Node.Underlay, a) {
			if err := c.prog.DeleteDecapAddr(a); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("lb: %w", err)
			}
		}
	}
	c.decap = append([]netip.Addr(nil), cfg.Node.Underlay...)
	return nil
}

func (c *lbComponent) closeMaps() {
	for _, m := range c.maps {
		m.Close()
	}
	c.maps = nil
}

func (c *lbComponent) close(intent stopIntent) error {
	if c.m != nil {
		c.m.Close()
	}
	c.closeMaps()
	return c.probes.close(intent)
}
