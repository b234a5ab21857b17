package bpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
)

// MaxEndpoints bounds endpoint ids: 1 <= id < MaxEndpoints (router_maps.h).
const MaxEndpoints = 16384

// Endpoint is one local endpoint as the router stage sees it.
type Endpoint struct {
	// ID indexes the endpoint's counters (1 <= ID < MaxEndpoints).
	ID uint32
	// Ifindex is the host side of the endpoint's link (veth or tap).
	Ifindex int
	// MAC is the endpoint's own MAC; nil while unknown (its traffic then
	// goes through the kernel, which resolves it).
	MAC net.HardwareAddr
	// HostMAC is the MAC of the host side of the link.
	HostMAC net.HardwareAddr
	// MTU of the link: larger packets go to the kernel.
	MTU int
	// Addrs are the endpoint's own addresses.
	Addrs []netip.Addr
	// VIPs are the service VIPs it serves with direct server return: it
	// may send from them, and tunnel packets to its addresses whose inner
	// destination is one of them are decapsulated for it.
	VIPs []netip.Addr
}

// Router writes the router stage's maps and reads its counters. Its one
// user in the daemon is the router's control plane (router/).
type Router struct {
	m RouterMaps
}

// NewRouter returns the writer of m.
func NewRouter(m RouterMaps) *Router { return &Router{m: m} }

func (e Endpoint) value() (DatapathEndpoint, error) {
	v := DatapathEndpoint{Id: e.ID, Ifindex: uint32(e.Ifindex), Mtu: uint32(e.MTU)}
	if e.ID == 0 || e.ID >= MaxEndpoints {
		return v, fmt.Errorf("endpoint id %d out of range 1..%d", e.ID, MaxEndpoints-1)
	}
	if e.Ifindex <= 0 || e.MTU <= 0 {
		return v, fmt.Errorf("endpoint %d: interface %d, mtu %d", e.ID, e.Ifindex, e.MTU)
	}
	if len(e.MAC) != 0 && len(e.MAC) != 6 || len(e.HostMAC) != 6 {
		return v, fmt.Errorf("endpoint %d: bad MAC addresses %q, %q", e.ID, e.MAC, e.HostMAC)
	}
	copy(v.Mac[:], e.MAC)
	copy(v.HostMac[:], e.HostMAC)
	if len(e.VIPs) > 0 {
		v.Flags |= uint32(DatapathEndpointFlagsEP_F_DSR)
	}
	return v, nil
}

// SetEndpoint writes (or rewrites) endpoint e: its sources first, then its
// interface, then its addresses, so no packet finds it half written.
// Addresses and VIPs it no longer has are removed (old is what was
// written before, nil for a new endpoint).
func (r *Router) SetEndpoint(e Endpoint, old *Endpoint) error {
	v, err := e.value()
	if err != nil {
		return err
	}
	srcs := map[netip.Addr]uint32{}
	for _, a := range e.Addrs {
		srcs[a.Unmap()] |= uint32(DatapathEndpointAddrFlagsEP_ADDR_F_OWN)
	}
	for _, a := range e.VIPs {
		srcs[a.Unmap()] |= uint32(DatapathEndpointAddrFlagsEP_ADDR_F_VIP)
	}
	for a, f := range srcs {
		k := DatapathEndpointAddrKey{Id: e.ID, Addr: Addr16(a)}
		if err := r.m.EndpointSrcs.Put(&k, f); err != nil {
			return fmt.Errorf("endpoint %d source %s: %w", e.ID, a, err)
		}
	}
	if err := r.m.EndpointIfaces.Put(uint32(e.Ifindex), &DatapathEndpointIface{Id: e.ID}); err != nil {
		return fmt.Errorf("endpoint %d interface: %w", e.ID, err)
	}
	for _, a := range e.Addrs {
		k := DatapathAddrKey{Addr: Addr16(a)}
		if err := r.m.Endpoints.Put(&k, &v); err != nil {
			return fmt.Errorf("endpoint %d address %s: %w", e.ID, a, err)
		}
	}
	if old == nil {
		return nil
	}
	stale := *old
	stale.Addrs = without(old.Addrs, e.Addrs)
	stale.VIPs = without(append(old.Addrs, old.VIPs...), append(e.Addrs, e.VIPs...))
	if old.Ifindex == e.Ifindex {
		stale.Ifindex = 0
	}
	return r.remove(stale)
}

// DeleteEndpoint removes everything SetEndpoint wrote for e.
func (r *Router) DeleteEndpoint(e Endpoint) error {
	e.VIPs = append(append([]netip.Addr(nil), e.Addrs...), e.VIPs...)
	return r.remove(e)
}

// remove deletes e's addresses (Addrs), its sources (VIPs holds every
// source to remove) and its interface (unless Ifindex is 0), addresses
// first so no packet is delivered to a half-removed endpoint.
func (r *Router) remove(e Endpoint) error {
	var errs []error
	for _, a := range e.Addrs {
		k := DatapathAddrKey{Addr: Addr16(a)}
		errs = append(errs, ignoreMissing(r.m.Endpoints.Delete(&k)))
	}
	if e.Ifindex > 0 {
		errs = append(errs, ignoreMissing(r.m.EndpointIfaces.Delete(uint32(e.Ifindex))))
	}
	for _, a := range e.VIPs {
		k := DatapathEndpointAddrKey{Id: e.ID, Addr: Addr16(a)}
		errs = append(errs, ignoreMissing(r.m.EndpointSrcs.Delete(&k)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove endpoint %d: %w", e.ID, err)
	}
	return nil
}

func without(all, keep []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range all {
		found := false
		for _, b := range keep {
			found = found || a == b
		}
		if !found {
			out = append(out, a)
		}
	}
	return out
}

func ignoreMissing(err error) error {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// ResetCounters zeroes endpoint id's counters on every CPU (an id handed
// out again must not start with its last owner's counts).
func (r *Router) ResetCounters(id uint32) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("reset endpoint %d counters: %w", id, err)
	}
	if err := r.m.EndpointStats.Put(id, make([]DatapathEndpointCounters, n)); err != nil {
		return fmt.Errorf("reset endpoint %d counters: %w", id, err)
	}
	return nil
}

// Counters returns endpoint id's counters summed over CPUs.
func (r *Router) Counters(id uint32) (DatapathEndpointCounters, error) {
	var per []DatapathEndpointCounters
	var sum DatapathEndpointCounters
	if err := r.m.EndpointStats.Lookup(id, &per); err != nil {
		return sum, fmt.Errorf("endpoint %d counters: %w", id, err)
	}
	for _, c := range per {
		sum.RxPackets += c.RxPackets
		sum.RxBytes += c.RxBytes
		sum.TxPackets += c.TxPackets
		sum.TxBytes += c.TxBytes
		sum.DropSpoofed += c.DropSpoofed
		sum.DropDecap += c.DropDecap
	}
	return sum, nil
}

// Events returns the router's event counters summed over CPUs, by name
// ("delivered", "forwarded", ...).
func (r *Router) Events() (map[string]uint64, error) {
	out := map[string]uint64{}
	for s := DatapathRouterStat(0); s < DatapathRouterStatROUTER_STAT_MAX; s++ {
		var per []uint64
		if err := r.m.Events.Lookup(uint32(s), &per); err != nil {
			return nil, fmt.Errorf("router events: %w", err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[s.String()] = sum
	}
	return out, nil
}
