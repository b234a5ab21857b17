package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aird-net/aird/internal/config"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/config/oc"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// StopMode says how Stop leaves the peers.
type StopMode int

const (
	// StopRestart closes the sessions without a NOTIFICATION: peers that
	// negotiated graceful restart keep our routes (stale) until the next
	// speaker re-establishes and sends End-of-RIB, and the kernel keeps
	// the routes we installed. Peers without graceful restart get a
	// CEASE.
	StopRestart StopMode = iota
	// StopShutdown withdraws our routes, then sends CEASE to every peer,
	// so they drop our routes at once (see withdrawBeforeCease), and
	// removes the routes we installed.
	StopShutdown
)

func (m StopMode) String() string {
	if m == StopShutdown {
		return "shutdown"
	}
	return "restart"
}

// Speaker is the embedded BGP speaker: GoBGP in process, configured from
// [bgp]. Its methods are safe for concurrent use. A Speaker runs once:
// after Stop, create a new one.
type Speaker struct {
	o      Options
	log    *slog.Logger
	kickCh chan struct{}

	// reconcileErrors counts failed FIB passes (for the metrics).
	reconcileErrors atomic.Uint64
	// fullPass asks the reconciler for a full pass (kick), resyncRIB
	// for reading GoBGP's RIB before it (resync).
	fullPass  atomic.Bool
	resyncRIB atomic.Bool
	// logRepeats rate-limits GoBGP's repeated log records.
	logRepeats *logRepeats

	mu       sync.Mutex
	cfg      *config.BGP
	node     config.Node
	peers    []peer
	policies policySet
	desired  *routeSet // what SetAdvertised asked for
	// advertised is what GoBGP holds: the desired set itself while the
	// two agree (see ownAdvertised).
	advertised *routeSet
	drain      drainState
	drainGen   uint64 // bumped by every Drain and Undrain
	// extNH holds the peers (by address) whose last OPEN announced
	// Extended Next Hop for IPv4 unicast: see planNexthop. It outlives
	// their sessions, so that a session that comes up again sends the
	// same as the one before from its first UPDATE.
	extNH   map[netip.Addr]bool
	run     *run
	stopped bool
}

// run is what exists between Start and Stop.
type run struct {
	srv     *gobgpServer
	fib     *fib
	tracker *tracker
	marker  restartMarker
	// gracefulRestart is [bgp.graceful-restart] enabled: the marker is
	// kept fresh.
	gracefulRestart bool
	stopping        *atomic.Bool
	// ctx ends at Stop (cancel): for the run's goroutines.
	ctx         context.Context
	cancel      context.CancelFunc
	loopStarted bool
	loopDone    chan struct{}

	// watches run neighbour discovery for unnumbered peers, by
	// interface; discovered is what they found. Both under Speaker.mu.
	watches    map[string]*ifaceWatch
	discovered map[string]netip.Addr
	// restartPending are the unnumbered peers of a graceful restart that
	// discovery has not found yet: their first session is still part of
	// the restart (see restartingPeer). Under Speaker.mu.
	restartPending map[string]bool
	restartEnds    time.Time

	// trim returns the memory of bulk route changes to the OS.
	trim memTrim
	// rib is the reconciler's copy of the learned RIB.
	rib *ribState
	// bestWatched is set once GoBGP's best-path events are watched
	// (watchBest). Under Speaker.mu.
	bestWatched bool
	// advertised caches the advertised counts per peer.
	advertised advertisedCounts

	// The reconciler's own: the peers left out of the FIB for their
	// limit, whether the last pass was synced, and when a pass last
	// changed the FIB.
	excluded   map[netip.Addr]bool
	synced     bool
	lastChange time.Time
}

// New checks the options and the configuration (including password files)
// and returns a stopped speaker.
func New(o Options) (*Speaker, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	peers, err := buildPeers(o.Config)
	if err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	pols, err := buildPolicies(o.Config, o.Node, peers, policyState{})
	if err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	return &Speaker{
		o:          o,
		log:        o.Logger,
		kickCh:     make(chan struct{}, 1),
		cfg:        o.Config,
		node:       o.Node,
		peers:      peers,
		policies:   pols,
		desired:    newRouteSet(0),
		advertised: newRouteSet(0),
		extNH:      map[netip.Addr]bool{},
		logRepeats: newLogRepeats(),
	}, nil
}

// Start runs GoBGP, installs the policies, adds the peers and announces the
// routes given to SetAdvertised so far (on a graceful restart, the routes
// first: see announceAndPeer). Call SetAdvertised before Start with the
// initial routes: after a graceful restart, peers then get them in their
// first UPDATEs, before our End-of-RIB (which makes a graceful-restart
// helper flush what we did not resend). ctx bounds the start-up only.
func (s *Speaker) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.run != nil:
		return errors.New("bgp: start: already running")
	case s.stopped:
		return errors.New("bgp: start: a stopped speaker cannot start again; create a new one")
	}
	// Password files are read now, not when New ran.
	peers, err := buildPeers(s.cfg)
	if err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	if m := newDrainMarker(s.o.StateDir); s.drain == drainNone && m.present() {
		s.drain = drainWithdrawn
		s.log.Warn("bgp: the node was drained before this start and stays drained: nothing is announced until airctl bgp undrain", "marker", m.path)
	}
	s.extNH = loadExtNH(s.o.StateDir, s.log)
	pols, err := buildPolicies(s.cfg, s.node, peers, s.policyState())
	if err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	r, err := s.startRun(ctx, peers, pols)
	if err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	s.run, s.peers, s.policies = r, peers, pols
	return nil
}

func (s *Speaker) startRun(ctx context.Context, peers []peer, pols policySet) (*run, error) {
	c := s.cfg
	restartTime := c.GracefulRestart.RestartTime.D()
	marker := newRestartMarker(s.o.StateDir)
	restarting := c.GracefulRestart.Enabled && marker.recent(restartTime)

	f, err := newFIB(s.o.FIBTable, s.o.RouteProtocol, s.log)
	if err != nil {
		return nil, err
	}
	r := &run{
		fib:             f,
		tracker:         newTracker(peers, time.Now().Add(restartTime)),
		marker:          marker,
		gracefulRestart: c.GracefulRestart.Enabled,
		stopping:        &atomic.Bool{},
		loopDone:        make(chan struct{}),
		watches:         map[string]*ifaceWatch{},
		discovered:      map[string]netip.Addr{},
		restartPending:  pendingRestart(peers, restarting),
		restartEnds:     time.Now().Add(restartTime),
		rib:             newRIBState(),
	}
	r.rib.setFilters(peers)
	opts := []server.ServerOption{server.LoggerOption(newGoBGPLogger(s.log, r.stopping, s.logRepeats), nil)}
	if c.GRPCSocket != "" {
		if err := prepareGRPCSocket(c.GRPCSocket); err != nil {
			f.close()
			return nil, err
		}
		opts = append(opts, server.GrpcListenAddress("unix://"+c.GRPCSocket))
	}
	r.srv = newGoBGPServer(c.GRPCSocket != "", opts...)
	go r.srv.Serve()
	watchCtx, cancel := context.WithCancel(context.Background())
	r.ctx, r.cancel = watchCtx, cancel
	s.advertised = newRouteSet(s.desired.len()) // this GoBGP holds nothing yet
	fail := func(err error) (*run, error) {
		s.stopRun(r, false)
		f.close()
		return nil, err
	}

	if err := r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: globalConfig(c)}); err != nil {
		return fail(fmt.Errorf("start GoBGP: %w", err))
	}
	// Policies before peers: without them GoBGP accepts everything.
	if err := r.srv.SetPolicies(ctx, pols.req); err != nil {
		return fail(fmt.Errorf("set policies: %w", err))
	}
	for _, a := range assignments() {
		if err := r.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a}); err != nil {
			return fail(fmt.Errorf("assign policy: %w", err))
		}
	}
	if err := r.srv.WatchEvent(watchCtx, s.callbacks(r), watchOptions()...); err != nil {
		return fail(fmt.Errorf("watch events: %w", err))
	}
	if err := s.watchBest(r, peers); err != nil {
		return fail(err)
	}
	announce := s.desired
	if s.drain == drainWithdrawn {
		announce = newRouteSet(0) // drained before this start: peers only
	}
	held, err := s.announceAndPeer(ctx, r.srv, peers, announce, restarting)
	if err != nil {
		return fail(err)
	}
	for _, p := range held {
		go s.releaseOnBFDUp(watchCtx, r.srv, p)
	}
	s.advertised = announce // all of it went in
	r.trim.routes.Store(int64(s.advertised.len()))
	r.trim.bulk(s.advertised.len(), time.Now())
	if c.GRPCSocket != "" {
		if err := secureGRPCSocket(c.GRPCSocket, 2*time.Second); err != nil {
			return fail(err)
		}
	}
	if c.GracefulRestart.Enabled {
		if err := marker.touch(); err != nil {
			s.log.Warn("bgp: restart marker", "err", err)
		}
	}
	r.loopStarted = true
	go s.reconcileLoop(watchCtx, r)
	s.syncWatches(r, peers)
	s.kick()
	s.log.Info("bgp: speaker started", "asn", uint32(c.ASN), "router_id", c.RouterID, "peers", len(peers), "routes", s.advertised.len(), "restarting", restarting)
	return r, nil
}

// announceAndPeer gives GoBGP the initial routes and the peers. On a cold
// start the peers come first: their sessions come up while the routes load
// (GoBGP sends what it holds when a session is established, then the rest
// as it arrives), so a large route set does not delay the sessions. A
// graceful restart keeps the routes-first order: GoBGP sends End-of-RIB
// right after what it holds when the session comes up, and a helper
// flushes the stale routes we have not resent by then.
//
// It returns the peers held for BFD (holdsForBFD).
func (s *Speaker) announceAndPeer(ctx context.Context, srv *gobgpServer, peers []peer, routes *routeSet, restarting bool) ([]peer, error) {
	if restarting {
		s.log.Info("bgp: graceful restart: advertising Restart State; installed routes are kept until the peers are synced")
		if _, err := addPaths(srv, routes, s.advertised); err != nil {
			return nil, err
		}
		return addPeers(ctx, srv, peers, true)
	}
	held, err := addPeers(ctx, srv, peers, false)
	if err != nil {
		return nil, err
	}
	_, err = addPaths(srv, routes, s.advertised)
	return held, err
}

// addPeers adds the peers that have an address (unnumbered ones are added
// when discovery finds them); it returns those held for BFD.
func addPeers(ctx context.Context, srv *gobgpServer, peers []peer, restarting bool) ([]peer, error) {
	var held []peer
	for _, p := range peers {
		if !p.resolved() {
			continue
		}
		h, err := addPeer(ctx, srv, p, restarting)
		if err != nil {
			return nil, fmt.Errorf("add peer %s: %w", p.name, err)
		}
		if h {
			held = append(held, p)
		}
	}
	return held, nil
}

// globalConfig is GoBGP's global section: IPv4 and IPv6 unicast,
// multipath on (ECMP across peers), no listener when listen-port is 0.
func globalConfig(c *config.BGP) *api.Global {
	port := int32(c.ListenPort)
	if port == 0 {
		port = -1
	}
	return &api.Global{
		Asn:        uint32(c.ASN),
		RouterId:   c.RouterID.String(),
		ListenPort: port,
		Families: []uint32{
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV4_UNICAST]),
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV6_UNICAST]),
		},
		UseMultiplePaths: true,
	}
}

// Stop stops the speaker; see StopMode. It waits for GoBGP and the
// unnumbered peer discovery to finish.
func (s *Speaker) Stop(mode StopMode) error {
	s.mu.Lock()
	if s.run == nil {
		s.mu.Unlock()
		return errors.New("bgp: stop: not running")
	}
	r := s.run
	watches := r.stopWatches()
	err := s.stopLocked(r, mode)
	s.mu.Unlock()
	// Outside the lock: a watcher may be waiting for it to report.
	for _, w := range watches {
		<-w.done
	}
	return err
}

func (s *Speaker) stopLocked(r *run, mode StopMode) error {
	s.run, s.stopped = nil, true
	s.log.Info("bgp: stopping speaker", "mode", mode)
	var errs []error
	if mode == StopRestart && s.cfg.GracefulRestart.Enabled {
		if err := r.marker.touch(); err != nil {
			errs = append(errs, err)
		}
	}
	if mode == StopShutdown {
		s.withdrawBeforeCease(r)
	}
	s.stopRun(r, mode == StopRestart)
	if mode == StopShutdown {
		if err := r.fib.flush(); err != nil {
			errs = append(errs, err)
		}
		if err := r.marker.remove(); err != nil {
			errs = append(errs, err)
		}
	}
	r.fib.close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bgp: stop: %w", err)
	}
	return nil
}

// stopRun ends the reconciler and GoBGP. With graceful, GoBGP closes the
// sessions of graceful-restart peers without a NOTIFICATION
// (StopBgp's AllowGracefulRestart); otherwise every peer gets CEASE.
func (s *Speaker) stopRun(r *run, graceful bool) {
	r.cancel()
	if r.loopStarted {
		<-r.loopDone
	}
	r.stopping.Store(true)
	if err := r.srv.StopBgp(context.Background(), &api.StopBgpRequest{AllowGracefulRestart: graceful}); err != nil {
		s.log.Warn("bgp: stop GoBGP", "err", err)
	}
	// Stop also ends GoBGP's BFD and gRPC servers.
	r.srv.Stop()
}
