package router

import (
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// adopt takes over the endpoints of the store: their links and pinned
// programs are kept, the host side's routes and the maps written again.
// An endpoint whose link is gone is kept as missing. Then it removes what
// an interrupted Add left: allocations, host links and pinned programs that
// belong to no endpoint.
func (m *Manager) adopt() error {
	start := time.Now()
	recs, err := m.st.all()
	if err != nil {
		return err
	}
	hs := snapshotHost()
	for _, ep := range recs {
		m.eps[ep.Name], m.ids[ep.ID] = ep, ep.Name
		m.nextID = max(m.nextID, ep.ID+1)
		m.adoptOne(ep, hs)
	}
	adopted := time.Since(start)
	m.collectGarbage()
	if len(recs) > 0 {
		m.log.Info("endpoints adopted", "endpoints", len(recs), "missing", len(m.missing),
			"took", adopted.Round(time.Millisecond), "with_cleanup", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (m *Manager) adoptOne(ep *Endpoint, hs *hostState) {
	l, ok := hs.links[ep.HostIf]
	var err error
	if !ok {
		l, err = netlink.LinkByName(ep.HostIf) // not in the snapshot's dump
	}
	if err != nil || (ep.Kind == KindContainer && l.Type() != "veth") {
		m.missing[ep.Name] = true
		m.log.Warn("endpoint link is gone; the endpoint stays listed as missing until deleted",
			"endpoint", ep.Name, "interface", ep.HostIf, "error", err)
		return
	}
	if err := configureHost(ep, l, m.opts.ProcSys, hs); err != nil {
		m.log.Warn("endpoint host side not restored", "endpoint", ep.Name, "error", err)
	}
	if m.opts.Dataplane == nil {
		return
	}
	if err := m.opts.Dataplane.AttachEndpoint(ep.HostIf); err != nil {
		m.log.Warn("endpoint program not attached: its traffic goes through the kernel", "endpoint", ep.Name, "error", err)
	}
	if err := m.opts.Maps.SetEndpoint(bpfEndpoint(ep, l), nil); err != nil {
		m.log.Warn("endpoint not written to the data plane", "endpoint", ep.Name, "error", err)
	}
}

// collectGarbage removes allocations, host links and endpoint programs
// that belong to no endpoint (an Add interrupted by a crash).
func (m *Manager) collectGarbage() {
	owned := map[string]bool{}
	hostIfs := map[string]bool{}
	for name, ep := range m.eps {
		owned[owner(name)] = true
		hostIfs[ep.HostIf] = true
	}
	for _, al := range m.opts.IPAM.Allocations("") {
		if strings.HasPrefix(al.Owner, "endpoint/") && !owned[al.Owner] {
			if _, err := m.opts.IPAM.Release(al.Owner); err != nil {
				m.log.Warn("stale endpoint address not released", "owner", al.Owner, "error", err)
				continue
			}
			m.log.Info("released the address of an endpoint that was never completed", "owner", al.Owner, "address", al.Addr)
		}
	}
	if links, err := listLinks(); err == nil { // after adoption: fresh
		for _, l := range links {
			n := l.Attrs().Name
			if isHostIfName(n) && l.Type() == "veth" && !hostIfs[n] {
				if err := netlink.LinkDel(l); err != nil {
					m.log.Warn("stale endpoint link not deleted", "interface", n, "error", err)
					continue
				}
				m.log.Info("deleted the link of an endpoint that was never completed", "interface", n)
			}
		}
	}
	if m.opts.Dataplane == nil {
		return
	}
	pinned, err := m.opts.Dataplane.EndpointLinks()
	if err != nil {
		m.log.Warn("endpoint programs not checked", "error", err)
		return
	}
	for _, n := range pinned {
		if hostIfs[n] {
			continue
		}
		if err := m.opts.Dataplane.DetachEndpoint(n); err != nil {
			m.log.Warn("stale endpoint program not detached", "interface", n, "error", err)
		}
	}
}
