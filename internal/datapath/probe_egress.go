package datapath

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// ProbeInterface is where the probe program runs: the probe routing table
// sends marked probes out of lo (see InstallProbeRouting).
const ProbeInterface = "lo"

// probeEgress is the attached probe program.
type probeEgress struct {
	ifindex int
	adopted bool
	link    link.Link
	linkID  link.ID
}

// ProbeEgressStatus describes the attached probe program.
type ProbeEgressStatus struct {
	Interface string
	Ifindex   int
	// Adopted is true when the link was pinned by an earlier aird.
	Adopted   bool
	ProgramID uint32
	LinkID    uint32
	// FIBIfindex is the uplink the program's FIB lookups start from, as
	// the pinned map holds it (0: lo, no uplink attached yet).
	FIBIfindex int
}

// AttachProbeEgress runs the probe program (bpf.ProgramHC) as a tcx egress
// program of lo, with a bpf_link pinned at PinPath/links/tcx_lo: marked
// health probes are then tunnelled to their backends. A link pinned by an
// earlier process is adopted by replacing its program in place. Calling it
// again is a no-op. lo is resolved in the calling thread's network
// namespace.
func (d *Datapath) AttachProbeEgress() (ProbeEgressStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return ProbeEgressStatus{}, errors.New("attach probe egress: datapath is closed")
	}
	prog := d.objs.Programs.Probe
	lo, err := netlink.LinkByName(ProbeInterface)
	if err != nil {
		return ProbeEgressStatus{}, fmt.Errorf("attach probe egress: look up %s: %w", ProbeInterface, err)
	}
	ifindex := lo.Attrs().Index
	if d.hc == nil || tcxIfindex(d.hc.link) != ifindex {
		if d.hc != nil {
			_ = d.hc.link.Close()
			d.hc = nil
		}
		hc, err := d.ensureProbeLink(prog, ifindex)
		if err != nil {
			return ProbeEgressStatus{}, fmt.Errorf("attach probe egress to %s: %w", ProbeInterface, err)
		}
		d.hc = hc
	}
	// Before this process attached its uplinks (the daemon attaches them
	// after the lb maps are programmed) there is nothing to write: the
	// pinned map keeps what the earlier process wrote, which the adopted
	// probe program uses meanwhile, and SetUplinks writes it. Writing 0
	// (lo) here made every tunnelled probe of a restart fail until then
	// (then a target's first result decided its health; now it takes
	// fall failures, lb/health).
	if len(d.uplinks) > 0 {
		if err := d.writeProbeFIB(); err != nil {
			return ProbeEgressStatus{}, fmt.Errorf("attach probe egress: %w", err)
		}
	}
	return d.probeStatus(), nil
}

// ProbeEgress reports the attached probe program; false when it is not
// attached.
func (d *Datapath) ProbeEgress() (ProbeEgressStatus, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hc == nil {
		return ProbeEgressStatus{}, false
	}
	return d.probeStatus(), true
}

func (d *Datapath) probeStatus() ProbeEgressStatus {
	var id uint32
	if info, err := d.objs.Programs.Probe.Info(); err == nil {
		pid, _ := info.ID()
		id = uint32(pid)
	}
	fib, err := d.node.ProbeFIBIfindex()
	if err != nil {
		d.log.Warn("probe program's FIB interface unknown", "error", err)
	}
	return ProbeEgressStatus{Interface: ProbeInterface, Ifindex: d.hc.ifindex, Adopted: d.hc.adopted,
		ProgramID: id, LinkID: uint32(d.hc.linkID), FIBIfindex: int(fib)}
}

// ensureProbeLink adopts the pinned probe link when it is a tcx egress link
// of ifindex, else replaces it by a new attachment.
func (d *Datapath) ensureProbeLink(prog *ebpf.Program, ifindex int) (*probeEgress, error) {
	path := d.pins.probeLinkPath(ProbeInterface)
	l, err := link.LoadPinnedLink(path, nil)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		d.log.Warn("pinned probe link unusable, replacing it", "pin", path, "error", err)
		if err := removePin(path); err != nil {
			return nil, err
		}
	default:
		info, ierr := l.Info()
		if ierr == nil && info.TCX() != nil && int(info.TCX().Ifindex) == ifindex &&
			ebpf.AttachType(info.TCX().AttachType) == ebpf.AttachTCXEgress {
			if err := l.Update(prog); err != nil {
				l.Close()
				return nil, fmt.Errorf("replace program of pinned link: %w", err)
			}
			d.log.Info("adopted pinned probe link", "interface", ProbeInterface, "link_id", info.ID,
				"old_program_id", info.Program)
			return &probeEgress{ifindex: ifindex, adopted: true, link: l, linkID: info.ID}, nil
		}
		d.log.Warn("pinned probe link belongs elsewhere, replacing it", "pin", path, "ifindex", ifindex)
		if err := unpinLink(l, path); err != nil {
			l.Close()
			return nil, err
		}
		if err := detach(l); err != nil {
			return nil, fmt.Errorf("detach stale probe link: %w", err)
		}
	}
	l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return nil, err
	}
	if err := l.Pin(path); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("pin probe link: %w", err)
	}
	info, err := l.Info()
	if err != nil {
		_ = detach(l)
		_ = removePin(path)
		return nil, fmt.Errorf("probe link info: %w", err)
	}
	d.log.Info("attached probe program", "interface", ProbeInterface, "ifindex", ifindex, "link_id", info.ID)
	return &probeEgress{ifindex: ifindex, link: l, linkID: info.ID}, nil
}

// probeFIBIfindex is the uplink (the first by name) the probe program's
// FIB lookups start from, 0 without uplinks.
func (d *Datapath) probeFIBIfindex() int {
	names := make([]string, 0, len(d.uplinks))
	for n := range d.uplinks {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return 0
	}
	return d.uplinks[names[0]].ifindex
}

// writeProbeFIB tells the probe program which uplink to look routes up
// from: a probe is routed like a data packet arriving on it.
func (d *Datapath) writeProbeFIB() error {
	return d.node.SetProbeFIBIfindex(uint32(d.probeFIBIfindex()))
}

// tcxIfindex returns the interface a live tcx link is attached to, 0 when
// unknown or gone.
func tcxIfindex(l link.Link) int {
	info, err := l.Info()
	if err != nil || info.TCX() == nil {
		return 0
	}
	return int(info.TCX().Ifindex)
}
