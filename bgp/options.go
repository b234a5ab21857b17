package bgp

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/aird-net/aird/internal/config"
)

const (
	// DefaultRouteProtocol is the rtnetlink protocol number (rtm_protocol)
	// aird stamps on the routes it installs from BGP, so that they can be
	// told apart from everyone else's and reconciled after a restart. It is
	// outside the numbers the kernel reserves (0-4), the ones iproute2 names
	// in rt_protos (up to 99, 186-192) and the ones FRR's zebra uses
	// (186-198: 197 is FRR's openfabric). Name it in
	// /etc/iproute2/rt_protos.d/aird.conf ("201 aird") to see
	// "proto aird" in ip route.
	DefaultRouteProtocol = 201
	// DefaultFIBTable is the kernel routing table accepted routes go to
	// (RT_TABLE_MAIN).
	DefaultFIBTable = 254
	// DefaultStateDir holds the graceful-restart marker; it is on tmpfs
	// so that a reboot (which loses the forwarding state) forgets it.
	DefaultStateDir = "/run/aird"
	// DefaultRAInterval is the Router Advertisement interval on the
	// interfaces of unnumbered peers, as FRR uses for its own.
	DefaultRAInterval = 10 * time.Second
)

// Options configure a Speaker.
type Options struct {
	// Config is the [bgp] section; required.
	Config *config.BGP
	// Node gives the underlay addresses used as next hops.
	Node config.Node
	// Logger receives the speaker's and GoBGP's logs; nil means
	// slog.Default().
	Logger *slog.Logger
	// FIBTable is the kernel routing table for accepted routes; 0 means
	// DefaultFIBTable (main). Tests use a private table.
	FIBTable int
	// RouteProtocol is the rtnetlink protocol number on installed routes;
	// 0 means DefaultRouteProtocol. Every route in FIBTable with this
	// protocol belongs to the speaker: stale ones are deleted.
	RouteProtocol int
	// StateDir holds the restart marker that tells the next Start that it
	// is a graceful restart; "" means DefaultStateDir.
	StateDir string
	// MaxPrefixRetry is the first hold-down of a peer that exceeded
	// import.max-prefixes (it doubles each consecutive time); 0 means
	// DefaultMaxPrefixRetry.
	MaxPrefixRetry time.Duration
	// RAInterval is how often the Router Advertisements that announce the
	// node to unnumbered peers are sent; 0 means DefaultRAInterval.
	RAInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.FIBTable == 0 {
		o.FIBTable = DefaultFIBTable
	}
	if o.RouteProtocol == 0 {
		o.RouteProtocol = DefaultRouteProtocol
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RAInterval == 0 {
		o.RAInterval = DefaultRAInterval
	}
	if o.MaxPrefixRetry == 0 {
		o.MaxPrefixRetry = DefaultMaxPrefixRetry
	}
	return o
}

// validate checks options after withDefaults.
func (o Options) validate() error {
	var errs []error
	if o.Config == nil {
		errs = append(errs, errors.New("no [bgp] configuration"))
	}
	switch {
	case o.FIBTable < 1 || int64(o.FIBTable) > 0xffffffff:
		errs = append(errs, fmt.Errorf("FIB table %d is out of range 1..4294967295", o.FIBTable))
	case o.FIBTable == 255:
		errs = append(errs, errors.New("FIB table 255 is the kernel's local table"))
	}
	// 0-4 are the kernel's own (unspec, redirect, kernel, boot, static):
	// reconciling them would delete routes aird does not own.
	if o.RouteProtocol < 5 || o.RouteProtocol > 255 {
		errs = append(errs, fmt.Errorf("route protocol %d is out of range 5..255", o.RouteProtocol))
	}
	if o.MaxPrefixRetry < time.Second {
		errs = append(errs, fmt.Errorf("max-prefix retry %s is shorter than a second", o.MaxPrefixRetry))
	}
	if o.RAInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("RA interval %s is too short", o.RAInterval))
	}
	if !filepath.IsAbs(o.StateDir) {
		errs = append(errs, fmt.Errorf("state directory %q is not absolute", o.StateDir))
	}
	return errors.Join(errs...)
}
