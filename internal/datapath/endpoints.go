package datapath

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"os"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/bpf"
)

// endpointLinkPinPrefix starts the name of the pinned XDP link of an
// endpoint's host-side interface.
const endpointLinkPinPrefix = "ep_"

func (p pins) endpointLinkPath(ifname string) string {
	return filepath.Join(p.linksDir(), endpointLinkPinPrefix+escapePinName(ifname))
}

// endpointLinkPins returns the interface names of pinned endpoint links.
func (p pins) endpointLinkPins() ([]string, error) { return p.pinsWithPrefix(endpointLinkPinPrefix) }

func (d *Datapath) endpointProg() (xdpProg, error) {
	info, err := d.objs.Programs.Endpoint.Info()
	if err != nil {
		return xdpProg{}, fmt.Errorf("endpoint program info: %w", err)
	}
	id, _ := info.ID()
	return xdpProg{d.objs.Programs.Endpoint, id}, nil
}

// AttachEndpoint runs the endpoint program (aird_xdp_ep: source check and
// routing of what the endpoint sends) on ifname, the host side of an
// endpoint's link, with a bpf_link pinned at links/ep_<ifname>. A link an
// earlier process pinned on the same interface is adopted (its program
// replaced atomically); attaching twice is a no-op. The interface is
// resolved in the calling thread's network namespace.
func (d *Datapath) AttachEndpoint(ifname string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return errors.New("attach endpoint: datapath is closed")
	}
	nlink, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("attach endpoint %s: %w", ifname, err)
	}
	ifindex := nlink.Attrs().Index
	if cur := d.endpoints[ifname]; cur != nil && linkIfindex(cur.link) == ifindex {
		return nil
	}
	p, err := d.endpointProg()
	if err != nil {
		return err
	}
	tx := &txn{log: d.log}
	path := d.pins.endpointLinkPath(ifname)
	if cur := d.endpoints[ifname]; cur != nil {
		if err := d.retire(tx, cur.link, path, ifname); err != nil {
			tx.rollback()
			return fmt.Errorf("attach endpoint %s: %w", ifname, err)
		}
	}
	up, err := d.adoptPinned(tx, p, ifname, path, nlink)
	if err == nil && up == nil {
		up, err = d.attach(tx, p, ifname, path, ifindex)
	}
	if err != nil {
		tx.rollback()
		return fmt.Errorf("attach endpoint %s: %w", ifname, err)
	}
	tx.commit()
	d.endpoints[ifname] = up
	return nil
}

// DetachEndpoint detaches the endpoint program from ifname and removes its
// pin (also one an earlier process left). Unknown names are not an error.
func (d *Datapath) DetachEndpoint(ifname string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return errors.New("detach endpoint: datapath is closed")
	}
	path := d.pins.endpointLinkPath(ifname)
	if cur := d.endpoints[ifname]; cur != nil {
		delete(d.endpoints, ifname)
		if err := unpinLink(cur.link, path); err != nil {
			return fmt.Errorf("detach endpoint %s: %w", ifname, err)
		}
		return detach(cur.link)
	}
	return detachPinned(path)
}

// EndpointLinks returns the interfaces with a pinned endpoint link, sorted
// (attached by this process or left by an earlier one).
func (d *Datapath) EndpointLinks() ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	names, err := d.pins.endpointLinkPins()
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	for n := range d.endpoints {
		set[n] = true
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// RouterMaps returns the router stage's maps for their one writer, the
// router's control plane (through bpf.Router). They stay owned by the
// datapath and are valid until Close.
func (d *Datapath) RouterMaps() (bpf.RouterMaps, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return bpf.RouterMaps{}, errors.New("router maps: datapath is closed")
	}
	return d.objs.Router, nil
}

// detachPinned detaches the link pinned at path and removes the pin; no
// pin is not an error.
func detachPinned(path string) error {
	l, err := loadPinnedLink(path)
	if err != nil || l == nil {
		return err
	}
	if err := unpinLink(l, path); err != nil {
		l.Close()
		return err
	}
	return detach(l)
}

// loadPinnedLink opens the link pinned at path; nil, nil when there is none.
func loadPinnedLink(path string) (link.Link, error) {
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load pinned link %s: %w", path, err)
	}
	return l, nil
}
