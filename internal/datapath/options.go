package datapath

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/cilium/ebpf/link"

	"github.com/aird-net/aird/bpf"
)

// XDP attach modes accepted in Options.XDPMode and reported by Uplinks.
const (
	ModeNative  = "native"  // in the driver (XDP_FLAGS_DRV_MODE)
	ModeGeneric = "generic" // in the stack after skb allocation (XDP_FLAGS_SKB_MODE)
	ModeAuto    = "auto"    // native, falling back to generic; never reported
)

// Options configure a Datapath.
type Options struct {
	// PinPath is the directory on the BPF filesystem that holds aird's
	// pins, e.g. /sys/fs/bpf/aird. It is created when missing.
	PinPath string
	// XDPMode is "native", "generic" or "auto" (try native, fall back to
	// generic).
	XDPMode string
	// Logger receives warnings and attach events; nil means slog.Default().
	Logger *slog.Logger
	// MaxVIPs and MaxBackends are the id spaces of the lb maps
	// (lb.max-vips, lb.max-backends); 0 means bpf.DefaultMaxVIPs and
	// bpf.DefaultMaxBackends. Changing one across a restart replaces
	// the lb maps sized by it, and with them every map whose entries
	// refer to ids (bpf.IDDependentMaps: conntrack too, so established
	// flows are balanced afresh once).
	MaxVIPs     uint32
	MaxBackends uint32
	// ConntrackSize is the number of flows conntrack holds
	// (lb.conntrack-size); 0 means bpf.DefaultConntrackSize. Changing it
	// across a restart replaces the pinned conntrack: established flows
	// are re-hashed.
	ConntrackSize uint32
}

func (o Options) bpfConfig() bpf.Config {
	return bpf.Config{MaxVIPs: o.MaxVIPs, MaxBackends: o.MaxBackends, ConntrackSize: o.ConntrackSize}
}

func (o Options) validate() error {
	var errs []error
	switch {
	case o.PinPath == "":
		errs = append(errs, errors.New("pin path is empty"))
	case !filepath.IsAbs(o.PinPath):
		errs = append(errs, fmt.Errorf("pin path %q is not absolute", o.PinPath))
	case filepath.Clean(o.PinPath) != o.PinPath:
		errs = append(errs, fmt.Errorf("pin path %q is not clean (want %q)", o.PinPath, filepath.Clean(o.PinPath)))
	case o.PinPath == "/" || o.PinPath == bpffsRoot:
		errs = append(errs, fmt.Errorf("pin path %q must be a directory of its own below the bpffs mount", o.PinPath))
	}
	if o.MaxVIPs > bpf.MaxIDs || o.MaxBackends > bpf.MaxIDs {
		errs = append(errs, fmt.Errorf("max vips %d / max backends %d: at most %d", o.MaxVIPs, o.MaxBackends, bpf.MaxIDs))
	}
	switch o.XDPMode {
	case ModeNative, ModeGeneric, ModeAuto:
	default:
		errs = append(errs, fmt.Errorf("xdp mode %q is not one of %q, %q, %q", o.XDPMode, ModeNative, ModeGeneric, ModeAuto))
	}
	return errors.Join(errs...)
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// attachFlags returns the link flags to try, in order, for the mode.
func attachFlags(mode string) []link.XDPAttachFlags {
	switch mode {
	case ModeNative:
		return []link.XDPAttachFlags{link.XDPDriverMode}
	case ModeGeneric:
		return []link.XDPAttachFlags{link.XDPGenericMode}
	default:
		return []link.XDPAttachFlags{link.XDPDriverMode, link.XDPGenericMode}
	}
}

func flagsMode(f link.XDPAttachFlags) string {
	if f == link.XDPGenericMode {
		return ModeGeneric
	}
	return ModeNative
}
