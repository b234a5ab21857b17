package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf/link"
)

// Teardown removes everything aird pinned under pinPath: it detaches every
// pinned XDP link and the probe program's tcx link (and, if there was one,
// the probe routing of the calling thread's network namespace, see
// InstallProbeRouting), then removes all pins and the directory itself. A missing pinPath is not
// an error. It is the explicit counterpart of Close (used by
// `aird --cleanup` and tests) and needs no Datapath, so it works after a
// crash too. Links are detached by their pins, so this works from any
// network namespace.
func Teardown(pinPath string) error {
	if err := (Options{PinPath: pinPath, XDPMode: ModeAuto}).validate(); err != nil {
		return fmt.Errorf("teardown: %w", err)
	}
	if _, err := os.Stat(pinPath); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := checkBPFFS(pinPath); err != nil {
		return fmt.Errorf("teardown %s: %w", pinPath, err) // never RemoveAll outside bpffs
	}

	p := pins{root: pinPath}
	names, err := p.linkPins()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range names {
		path := p.linkPath(name)
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("detach xdp from %s: load pinned link %s: %w", name, path, err))
			continue
		}
		if err := detach(l); err != nil {
			errs = append(errs, fmt.Errorf("detach xdp from %s: %w", name, err))
		}
	}
	eps, err := p.endpointLinkPins()
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range eps {
		if err := detachPinned(p.endpointLinkPath(name)); err != nil {
			errs = append(errs, fmt.Errorf("detach endpoint program from %s: %w", name, err))
		}
	}
	probes, err := p.probeLinkPins()
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range probes {
		path := p.probeLinkPath(name)
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("detach probe program from %s: load pinned link %s: %w", name, path, err))
			continue
		}
		if err := detach(l); err != nil {
			errs = append(errs, fmt.Errorf("detach probe program from %s: %w", name, err))
		}
	}
	// Without the program, marked probes would be delivered locally on lo.
	if len(probes) > 0 {
		if err := RemoveProbeRouting(); err != nil {
			errs = append(errs, err)
		}
	}
	// Removing the pins drops the last references to links and maps.
	if err := os.RemoveAll(filepath.Clean(pinPath)); err != nil {
		errs = append(errs, fmt.Errorf("remove pins: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("teardown %s: %w", pinPath, err)
	}
	return nil
}
