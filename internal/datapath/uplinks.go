package datapath

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// UplinkStatus describes one attached uplink.
type UplinkStatus struct {
	Name    string
	Ifindex int
	// Mode is "native" or "generic".
	Mode string
	// Adopted is true when the link was pinned by an earlier aird process
	// and taken over by this one.
	Adopted bool
	// ProgramID is the kernel ID of the program the link runs.
	ProgramID uint32
	// LinkID is the kernel ID of the bpf_link; it stays the same across
	// adoption.
	LinkID uint32
	// FlowAffinity is FlowAffinityOneCPU or FlowAffinityAnyCPU, as the
	// data plane uses it; FlowAffinityFrom says why ("configured", or the
	// link's kind).
	FlowAffinity     string
	FlowAffinityFrom string
}

// Uplinks returns the attached uplinks sorted by name.
func (d *Datapath) Uplinks() []UplinkStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]UplinkStatus, 0, len(d.uplinks))
	for _, up := range d.uplinks {
		affinity, from := d.flowAffinity(up)
		out = append(out, UplinkStatus{
			FlowAffinity:     affinity,
			FlowAffinityFrom: from,
			Name:             up.name,
			Ifindex:          up.ifindex,
			Mode:             up.mode,
			Adopted:          up.adopted,
			ProgramID:        uint32(d.progID),
			LinkID:           uint32(up.linkID),
		})
	}
	slices.SortFunc(out, func(a, b UplinkStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SetUplinks makes the set of interfaces running the pipeline exactly
// ifaces. New interfaces are attached with a bpf_link pinned at
// PinPath/links/xdp_<ifname>; a link pinned by an earlier process is adopted
// by replacing its program in place; interfaces no longer listed, and pins
// left for them, are detached and unpinned. It is all-or-nothing: on error
// every change made by this call is undone. Interfaces are resolved in the
// network namespace of the calling thread.
func (d *Datapath) SetUplinks(ifaces []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return errors.New("set uplinks: datapath is closed")
	}
	want, err := uplinkNames(ifaces)
	if err != nil {
		return fmt.Errorf("set uplinks: %w", err)
	}

	tx := &txn{log: d.log}
	next := make(map[string]*uplink, len(want))
	for _, name := range want {
		up, err := d.ensureUplink(tx, name)
		if err != nil {
			tx.rollback()
			return fmt.Errorf("attach xdp to %s: %w", name, err)
		}
		next[name] = up
	}

	// Owned uplinks no longer wanted.
	for name, up := range d.uplinks {
		if next[name] != nil {
			continue
		}
		if err := d.retire(tx, up.link, d.pins.linkPath(name), name); err != nil {
			tx.rollback()
			return fmt.Errorf("detach xdp from %s: %w", name, err)
		}
	}
	// Pins left by an earlier process for interfaces no longer wanted.
	pinned, err := d.pins.linkPins()
	if err != nil {
		tx.rollback()
		return fmt.Errorf("set uplinks: %w", err)
	}
	for _, name := range pinned {
		if next[name] != nil || d.uplinks[name] != nil {
			continue
		}
		path := d.pins.linkPath(name)
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			tx.rollback()
			return fmt.Errorf("detach xdp from %s: load pinned link %s: %w", name, path, err)
		}
		if err := d.retire(tx, l, path, name); err != nil {
			l.Close()
			tx.rollback()
			return fmt.Errorf("detach xdp from %s: %w", name, err)
		}
	}

	tx.commit()
	d.uplinks = next
	d.removeStalePins()
	if err := d.writeUplinks(); err != nil {
		d.log.Warn("uplinks map not updated: endpoint traffic goes through the kernel", "error", err)
	}
	if err := d.writeProbeFIB(); err != nil {
		d.log.Warn("probe program keeps its old FIB interface", "error", err)
	}
	return nil
}

// uplinkNames validates and deduplicates interface names, sorted.
func uplinkNames(ifaces []string) ([]string, error) {
	var errs []error
	seen := map[string]bool{}
	var out []string
	for _, n := range ifaces {
		switch {
		case n == "" || len(n) > 15:
			errs = append(errs, fmt.Errorf("interface name %q must be 1 to 15 bytes", n))
		case n == "." || n == ".." || strings.ContainsAny(n, "/: \t\n"):
			errs = append(errs, fmt.Errorf("invalid interface name %q", n))
		case !seen[n]:
			seen[n] = true
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, errors.Join(errs...)
}

// ensureUplink makes name run d.prog, reusing the current or pinned link
// when it still fits, and returns the resulting uplink.
func (d *Datapath) ensureUplink(tx *txn, name string) (*uplink, error) {
	nlink, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up interface: %w", err)
	}
	up, err := d.ensureUplinkOn(tx, name, nlink)
	if up != nil {
		up.kindAffinity, up.kindFrom = linkFlowAffinity(nlink)
	}
	return up, err
}

// ensureUplinkOn is ensureUplink for the link nlink is.
func (d *Datapath) ensureUplinkOn(tx *txn, name string, nlink netlink.Link) (*uplink, error) {
	ifindex := nlink.Attrs().Index
	path := d.pins.linkPath(name)

	if cur := d.uplinks[name]; cur != nil {
		if linkIfindex(cur.link) == ifindex {
			return cur, nil // attached by us and still in place
		}
		d.log.Warn("uplink was recreated, attaching to the new interface",
			"interface", name, "old_ifindex", cur.ifindex, "ifindex", ifindex)
		if err := d.retire(tx, cur.link, path, name); err != nil {
			return nil, err
		}
	} else {
		up, err := d.adoptPinned(tx, d.uplinkProg(), name, path, nlink)
		if up != nil || err != nil {
			return up, err
		}
	}
	return d.attach(tx, d.uplinkProg(), name, path, ifindex)
}

// xdpProg is a program to attach and its kernel id (for logs).
type xdpProg struct {
	prog *ebpf.Program
	id   ebpf.ProgramID
}

func (d *Datapath) uplinkProg() xdpProg { return xdpProg{d.prog, d.progID} }

// adoptPinned takes over the link pinned at path when it is attached to the
// interface (same ifindex) in an acceptable mode, replacing its program. It
// returns nil, nil when there is no usable pin (a stale one is retired).
func (d *Datapath) adoptPinned(tx *txn, p xdpProg, name, path string, nlink netlink.Link) (*uplink, error) {
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load pinned link %s: %w", path, err)
	}
	ifindex := nlink.Attrs().Index
	info, err := l.Info()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("pinned link %s: %w", path, err)
	}
	mode := attachedMode(nlink)
	switch {
	case info.XDP() == nil || int(info.XDP().Ifindex) != ifindex:
		d.log.Warn("pinned link belongs to another interface, replacing it",
			"interface", name, "ifindex", ifindex, "pin", path)
		if err := d.retire(tx, l, path, name); err != nil {
			l.Close()
			return nil, err
		}
		return nil, nil
	case d.opts.XDPMode != ModeAuto && mode != d.opts.XDPMode:
		d.log.Warn("pinned link runs in another xdp mode, re-attaching (brief traffic gap)",
			"interface", name, "mode", mode, "want", d.opts.XDPMode)
		if err := d.retireNow(tx, l, path, info.Program, mode, ifindex); err != nil {
			l.Close()
			return nil, err
		}
		return nil, nil
	}

	// Hold the old program so the update can be undone. Opening a program
	// by id needs CAP_SYS_ADMIN, which the systemd unit does not grant:
	// without it the adoption cannot be undone, which is safe because the
	// new program runs on the same adopted maps.
	old, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		d.log.Debug("old program not reopened; adoption will not be undoable",
			"interface", name, "old_program_id", info.Program, "error", err)
		old = nil
	}
	if err := l.Update(p.prog); err != nil {
		if old != nil {
			old.Close()
		}
		l.Close()
		return nil, fmt.Errorf("replace program of pinned link: %w", err)
	}
	tx.onUndo(func() error {
		defer l.Close()
		if old == nil {
			return nil
		}
		defer old.Close()
		if err := l.Update(old); err != nil {
			return fmt.Errorf("restore program of %s: %w", name, err)
		}
		return nil
	})
	tx.onCommit(func() {
		if old != nil {
			old.Close()
		}
	})
	d.log.Info("adopted pinned xdp link", "interface", name, "ifindex", ifindex,
		"mode", mode, "link_id", info.ID, "old_program_id", info.Program, "program_id", p.id)
	return &uplink{name: name, ifindex: ifindex, mode: mode, adopted: true, link: l, linkID: info.ID}, nil
}

// attach creates a new link on ifindex and pins it at path.
func (d *Datapath) attach(tx *txn, p xdpProg, name, path string, ifindex int) (*uplink, error) {
	var (
		l    link.Link
		mode string
		errs []error
	)
	for _, flags := range attachFlags(d.opts.XDPMode) {
		var err error
		l, err = link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: flags})
		if err == nil {
			mode = flagsMode(flags)
			break
		}
		errs = append(errs, fmt.Errorf("%s mode: %w", flagsMode(flags), err))
	}
	if l == nil {
		return nil, errors.Join(errs...)
	}
	if len(errs) > 0 {
		d.log.Warn("native xdp unavailable, using generic mode", "interface", name, "error", errors.Join(errs...))
	}
	tx.onUndo(func() error { return l.Close() }) // unpinned: closing detaches
	if err := l.Pin(path); err != nil {
		return nil, fmt.Errorf("pin link: %w", err)
	}
	tx.onUndo(func() error { return l.Unpin() })
	info, err := l.Info()
	if err != nil {
		return nil, fmt.Errorf("link info: %w", err)
	}
	d.log.Info("attached xdp", "interface", name, "ifindex", ifindex, "mode", mode,
		"link_id", info.ID, "program_id", p.id)
	return &uplink{name: name, ifindex: ifindex, mode: mode, link: l, linkID: info.ID}, nil
}

// retire unpins l now (undoable) and detaches it at commit.
func (d *Datapath) retire(tx *txn, l link.Link, path, name string) error {
	if err := unpinLink(l, path); err != nil {
		return err
	}
	tx.onUndo(func() error { return l.Pin(path) })
	tx.onCommit(func() {
		if err := detach(l); err != nil {
			d.log.Warn("detach xdp link", "interface", name, "error", err)
			return
		}
		d.log.Info("detached xdp", "interface", name)
	})
	return nil
}

// retireNow detaches l immediately, because the new link needs the hook
// (switching between native and generic mode). The undo re-attaches the old
// program in its old mode.
func (d *Datapath) retireNow(tx *txn, l link.Link, path string, progID ebpf.ProgramID, mode string, ifindex int) error {
	// Without CAP_SYS_ADMIN the old program cannot be reopened by id; the
	// switch then goes ahead without an undo.
	old, err := ebpf.NewProgramFromID(progID)
	if err != nil {
		d.log.Debug("old program not reopened; mode switch will not be undoable", "old_program_id", progID, "error", err)
		old = nil
	}
	closeOld := func() {
		if old != nil {
			old.Close()
		}
	}
	if err := unpinLink(l, path); err != nil {
		closeOld()
		return err
	}
	if err := detach(l); err != nil {
		closeOld()
		_ = l.Pin(path)
		return fmt.Errorf("detach link in %s mode: %w", mode, err)
	}
	tx.onUndo(func() error {
		if old == nil {
			return nil
		}
		defer old.Close()
		nl, err := link.AttachXDP(link.XDPOptions{Program: old, Interface: ifindex, Flags: attachFlags(mode)[0]})
		if err != nil {
			return fmt.Errorf("re-attach old program in %s mode: %w", mode, err)
		}
		defer nl.Close()
		return nl.Pin(path)
	})
	tx.onCommit(closeOld)
	return nil
}

// unpinLink removes the pin of l at path, so that l.Pin(path) restores it.
func unpinLink(l link.Link, path string) error {
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("unpin link: %w", err)
	}
	// A link loaded from a pin knows its path; one attached by us after a
	// failed Pin might not. Make sure the file is gone either way.
	return removePin(path)
}

// detach detaches and closes l. Detaching explicitly (not only closing)
// also works when another process still holds the link.
func detach(l link.Link) error {
	err := l.Detach()
	if errors.Is(err, link.ErrNotSupported) {
		err = nil
	}
	return errors.Join(err, l.Close())
}

// linkIfindex returns the interface a live XDP link is attached to, 0 when
// unknown or when the interface is gone.
func linkIfindex(l link.Link) int {
	info, err := l.Info()
	if err != nil || info.XDP() == nil {
		return 0
	}
	return int(info.XDP().Ifindex)
}

// attachedMode reports the XDP mode netlink shows for the interface.
func attachedMode(l netlink.Link) string {
	xdp := l.Attrs().Xdp
	if xdp == nil {
		return ""
	}
	switch xdp.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		return ModeNative
	case nl.XDP_ATTACHED_SKB:
		return ModeGeneric
	case nl.XDP_ATTACHED_HW:
		return "offload"
	default:
		return ""
	}
}
