package linklocal

import (
	"context"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	allNodes   = netip.MustParseAddr("ff02::1")
	allRouters = netip.MustParseAddr("ff02::2")
)

// advertise sends an RS once, then an RA every interval, and checks the
// link and the peer's silence at the same pace. After the link comes up it
// sends initialRAs RAs, settle apart, the first settle after the link came
// up, and none before (see settle).
func (d *Discoverer) advertise(ctx context.Context) {
	defer d.done.Done()
	d.send(&ndp.RouterSolicitation{Options: d.lla()}, allRouters)
	d.send(d.ra(), allNodes)
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	initial := time.NewTimer(time.Hour)
	initial.Stop()
	defer initial.Stop()
	left := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.expire()
			if !d.settling() {
				d.send(d.ra(), allNodes)
			}
		case <-d.cameUp:
			left = initialRAs
			initial.Reset(d.settle())
		case <-initial.C:
			if left == 0 || !d.linkUp() {
				left = 0
				continue
			}
			d.send(d.ra(), allNodes)
			if left--; left > 0 {
				initial.Reset(d.settle())
			}
		}
	}
}

// settle is how long after the link comes up aird sends no RA, and the
// pace of the initial ones: 1s, or the interval when it is shorter.
//
// An RA sent the moment the link comes up races the switch's own handling
// of the link change. FRR's zebra drops the neighbours it learned from RAs
// whenever it sees the interface down, and announces a neighbour to bgpd
// only once (the first RA from an address after that); bgpd before FRR 10
// also handles every interface up and down twice, through its main and its
// VNC zebra connections, in no fixed order with the neighbour announcement.
// An RA in that burst can therefore leave bgpd with no address for its
// `neighbor IFACE interface` peer while zebra holds ours and never
// announces it again: the session stays down until the next flap. After
// an administrative flap the switch cannot use the neighbour before its
// own link-local address has passed duplicate address detection (a second
// or more) anyway.
func (d *Discoverer) settle() time.Duration {
	return min(linkSettle, d.opts.Interval)
}

const (
	linkSettle = time.Second
	// initialRAs is how many RAs follow a link coming up before the
	// regular interval takes over, in case one is lost.
	initialRAs = 3
)

// settling reports whether the link came up less than settle ago.
func (d *Discoverer) settling() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Now().Before(d.quietUntil)
}

// ra is aird's Router Advertisement: lifetime 0, so no host makes the node
// its default router; it exists so the switch learns the node's address.
func (d *Discoverer) ra() *ndp.RouterAdvertisement {
	return &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: 0, Options: d.lla()}
}

func (d *Discoverer) lla() []ndp.Option {
	if len(d.ifi.HardwareAddr) == 0 {
		return nil
	}
	return []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: d.ifi.HardwareAddr}}
}

func (d *Discoverer) send(m ndp.Message, dst netip.Addr) {
	if err := d.conn.WriteTo(m, nil, dst); err != nil {
		d.opts.Logger.Debug("ndp send failed", "interface", d.ifi.Name, "type", m.Type(), "err", err)
	}
}

// receive learns the peer from RA, NS and NA sources; an RS is answered
// with an RA at once, unless the link came up less than settle ago (the
// initial RAs answer it).
func (d *Discoverer) receive(ctx context.Context) {
	defer d.done.Done()
	for {
		m, _, src, err := d.conn.ReadFrom()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.opts.Logger.Debug("ndp read failed", "interface", d.ifi.Name, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if !src.IsLinkLocalUnicast() || src.WithZone("") == d.self.WithZone("") {
			continue
		}
		switch m.(type) {
		case *ndp.RouterAdvertisement:
			d.saw(src, true)
		case *ndp.RouterSolicitation:
			d.saw(src, false)
			if !d.settling() {
				d.send(d.ra(), allNodes)
			}
		case *ndp.NeighborSolicitation, *ndp.NeighborAdvertisement:
			d.saw(src, false)
		}
	}
}

// saw records a packet from src. A peer learned from an RA is only replaced
// by another RA sender.
func (d *Discoverer) saw(src netip.Addr, fromRA bool) {
	src = src.WithZone(d.ifi.Name)
	d.mu.Lock()
	changed := src != d.peer && (fromRA || !d.fromRA || !d.peer.IsValid())
	if changed {
		d.peer, d.fromRA = src, fromRA
	}
	if src == d.peer {
		d.lastSeen = time.Now()
		d.fromRA = d.fromRA || fromRA
	}
	d.mu.Unlock()
	if changed {
		d.opts.Logger.Info("unnumbered peer found", "interface", d.ifi.Name, "peer", src, "from_ra", fromRA)
		d.publish(src)
	}
}

// watchLinks follows the interface's link state as it changes: down loses
// the peer at once, up sends an RS at once and starts the initial RAs (the
// first one settle later), so that the switch and the node find each
// other without waiting for the next interval. It reads until the
// subscription ends (Close).
func (d *Discoverer) watchLinks(ctx context.Context, links <-chan netlink.LinkUpdate) {
	defer d.done.Done()
	wasUp := d.linkUp()
	for u := range links {
		if ctx.Err() != nil || int(u.Index) != d.ifi.Index {
			continue
		}
		up := isUp(u.Link)
		if up == wasUp {
			continue
		}
		wasUp = up
		if up {
			d.opts.Logger.Debug("link up: soliciting", "interface", d.ifi.Name)
			d.mu.Lock()
			d.quietUntil = time.Now().Add(d.settle())
			d.mu.Unlock()
			d.send(&ndp.RouterSolicitation{Options: d.lla()}, allRouters)
			select {
			case d.cameUp <- struct{}{}:
			default:
			}
			continue
		}
		d.expire()
	}
}

func (d *Discoverer) linkUp() bool {
	l, err := d.nl.LinkByIndex(d.ifi.Index)
	return err == nil && isUp(l)
}

func isUp(l netlink.Link) bool {
	return l.Attrs().OperState == netlink.OperUp || l.Attrs().RawFlags&unix.IFF_RUNNING != 0
}

// expire forgets the peer when the link is down or the peer fell silent.
func (d *Discoverer) expire() {
	up := d.linkUp()
	d.mu.Lock()
	gone := d.peer.IsValid() && (!up || (d.opts.Expiry > 0 && time.Since(d.lastSeen) > d.opts.Expiry))
	old := d.peer
	if gone {
		d.peer, d.fromRA = netip.Addr{}, false
	}
	d.mu.Unlock()
	if gone {
		d.opts.Logger.Info("unnumbered peer lost", "interface", d.ifi.Name, "peer", old, "link_up", up)
		d.publish(netip.Addr{})
	}
}

// publish delivers the newest state, dropping a stale one a slow reader has
// not taken yet.
func (d *Discoverer) publish(a netip.Addr) {
	for {
		select {
		case d.updates <- a:
			return
		default:
		}
		select {
		case <-d.updates:
		default:
		}
	}
}
