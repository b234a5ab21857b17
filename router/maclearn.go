package router

import (
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// macLearner follows the kernel's neighbour table for VM endpoints whose
// MAC aird was not told: when the kernel resolves a guest's address on its
// tap, the MAC goes into the endpoint (record and map), and XDP delivers
// to it from then on.
type macLearner struct {
	done chan struct{}
	exit chan struct{}
}

func startMACLearner(m *Manager) *macLearner {
	l := &macLearner{done: make(chan struct{}), exit: make(chan struct{})}
	ch := make(chan netlink.NeighUpdate, 64)
	err := netlink.NeighSubscribeWithOptions(ch, l.done, netlink.NeighSubscribeOptions{ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case <-l.done: // stopping: the subscription's socket is closed
			default:
				m.log.Warn("neighbour updates", "error", err)
			}
		}})
	if err != nil {
		m.log.Warn("VM endpoint MACs will not be learned (give --mac)", "error", err)
		close(l.exit)
		return l
	}
	go func() {
		defer close(l.exit)
		for u := range ch {
			if u.Type != unix.RTM_NEWNEIGH || u.HardwareAddr == nil || len(u.HardwareAddr) != 6 {
				continue
			}
			if u.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT) == 0 {
				continue
			}
			m.learnMAC(u.LinkIndex, u.IP, u.HardwareAddr)
		}
	}()
	return l
}

func (l *macLearner) stop() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	<-l.exit
}

// learnMAC records mac for the VM endpoint on ifindex holding ip, if it
// has no MAC yet (or another).
func (m *Manager) learnMAC(ifindex int, ip net.IP, mac net.HardwareAddr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ep := range m.eps {
		if ep.Kind != KindVM || ep.MAC == mac.String() || (ep.MAC != "" && !ep.MACLearned) || m.missing[ep.Name] {
			continue
		}
		l, err := netlink.LinkByName(ep.HostIf)
		if err != nil || l.Attrs().Index != ifindex {
			continue
		}
		held := false
		for _, a := range ep.Addrs {
			held = held || a.AsSlice() != nil && net.IP(a.AsSlice()).Equal(ip)
		}
		if !held {
			continue
		}
		old := *ep
		ep.MAC, ep.MACLearned = mac.String(), true
		if err := m.st.put(ep); err != nil {
			m.log.Warn("learned MAC not stored", "endpoint", ep.Name, "error", err)
		}
		if m.opts.Maps != nil {
			ob := bpfEndpoint(&old, l)
			if err := m.opts.Maps.SetEndpoint(bpfEndpoint(ep, l), &ob); err != nil {
				m.log.Warn("learned MAC not written to the data plane", "endpoint", ep.Name, "error", err)
			}
		}
		m.log.Info("VM endpoint MAC learned", "endpoint", ep.Name, "mac", ep.MAC)
		return
	}
}
