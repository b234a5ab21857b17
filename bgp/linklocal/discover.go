package linklocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
)

// Options configure a Discoverer.
type Options struct {
	Interface string
	// Interval between the Router Advertisements aird sends (default 10s).
	Interval time.Duration
	// Expiry after which a silent peer is forgotten: 0 means 6 intervals,
	// a negative value keeps the peer until the link goes down or another
	// router replaces it (for a BGP peer that may send no RAs at all).
	Expiry time.Duration
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.Interface == "" {
		return errors.New("an interface is required")
	}
	if o.Interval == 0 {
		o.Interval = 10 * time.Second
	}
	if o.Interval < 100*time.Millisecond {
		return fmt.Errorf("RA interval %s is too short", o.Interval)
	}
	if o.Expiry == 0 {
		o.Expiry = 6 * o.Interval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Discoverer watches one interface for its BGP peer.
type Discoverer struct {
	opts    Options
	conn    *ndp.Conn
	nl      *netlink.Handle // bound to the namespace Start ran in
	ifi     *net.Interface
	self    netip.Addr
	updates chan netip.Addr
	cancel  context.CancelFunc
	// linkDone ends the link-state subscription, if there is one.
	linkDone chan struct{}
	// cameUp tells advertise that the link came up.
	cameUp chan struct{}
	done   sync.WaitGroup

	mu       sync.Mutex
	peer     netip.Addr // zero when none
	fromRA   bool
	lastSeen time.Time
	// quietUntil is settle after the link last came up: no RA before.
	quietUntil time.Time
}

// Start opens the interface's ICMPv6 socket in the calling thread's network
// namespace and starts sending and listening. The interface needs an IPv6
// link-local address.
func Start(ctx context.Context, o Options) (*Discoverer, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("unnumbered peer discovery: %w", err)
	}
	ifi, err := net.InterfaceByName(o.Interface)
	if err != nil {
		return nil, fmt.Errorf("unnumbered peer discovery on %s: %w", o.Interface, err)
	}
	conn, self, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return nil, fmt.Errorf("unnumbered peer discovery on %s (needs an IPv6 link-local address): %w", o.Interface, err)
	}
	if err := setup(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("unnumbered peer discovery on %s: %w", o.Interface, err)
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("unnumbered peer discovery on %s: netlink: %w", o.Interface, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &Discoverer{opts: o, conn: conn, nl: nl, ifi: ifi, self: self, updates: make(chan netip.Addr, 8), cameUp: make(chan struct{}, 1), cancel: cancel}
	links := d.subscribeLinks()
	d.done.Add(2)
	go d.receive(ctx)
	go d.advertise(ctx)
	if links != nil {
		d.done.Add(1)
		go d.watchLinks(ctx, links)
	}
	return d, nil
}

// subscribeLinks subscribes to link state changes (in the calling thread's
// namespace, like the rest). Without them the link is still checked every
// interval.
func (d *Discoverer) subscribeLinks() <-chan netlink.LinkUpdate {
	ch := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			d.opts.Logger.Debug("link subscription", "interface", d.ifi.Name, "err", err)
		},
	})
	if err != nil {
		d.opts.Logger.Warn("unnumbered peer discovery: no link state events: checking every interval",
			"interface", d.ifi.Name, "err", err)
		return nil
	}
	d.linkDone = done
	return ch
}

func setup(conn *ndp.Conn) error {
	var f ipv6.ICMPFilter
	f.SetAll(true)
	for _, t := range []ipv6.ICMPType{ipv6.ICMPTypeRouterSolicitation, ipv6.ICMPTypeRouterAdvertisement,
		ipv6.ICMPTypeNeighborSolicitation, ipv6.ICMPTypeNeighborAdvertisement} {
		f.Accept(t)
	}
	if err := conn.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("set ICMPv6 filter: %w", err)
	}
	if err := conn.JoinGroup(netip.MustParseAddr("ff02::2")); err != nil {
		return fmt.Errorf("join all-routers: %w", err)
	}
	return nil
}

// Updates delivers the peer address (with the interface as zone) each time
// it changes; the zero Addr means no peer.
func (d *Discoverer) Updates() <-chan netip.Addr { return d.updates }

// Peer returns the current peer, or the zero Addr.
func (d *Discoverer) Peer() netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.peer
}

// Self is the link-local address aird speaks from on the interface.
func (d *Discoverer) Self() netip.Addr { return d.self.WithZone(d.ifi.Name) }

// Index is the interface's index when Start ran: an interface deleted and
// created again under the same name has another one.
func (d *Discoverer) Index() int { return d.ifi.Index }

// Close stops sending and listening.
func (d *Discoverer) Close() error {
	d.cancel()
	if d.linkDone != nil {
		close(d.linkDone)
	}
	err := d.conn.Close()
	d.done.Wait()
	d.nl.Close()
	return err
}
