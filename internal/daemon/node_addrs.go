package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/internal/config"
)

// addrWriter is what the address follower writes: the data plane's local
// addresses and tunnel sources (*datapath.Datapath).
type addrWriter interface {
	SetLocalAddrs([]netip.Addr) error
	SetTunnelSources([]netip.Prefix) error
}

// addrFollower keeps two of the pipeline's maps in step with the kernel's
// addresses: local_addrs, every address of the node's network namespace
// (the inner destinations a tunnel packet to the node may have: a backend
// keeps its VIPs on lo), and tunnel_sources, datapath.tunnel-sources with
// "on-link" expanded to the prefixes of the uplinks' addresses. It syncs
// at every apply and, in between, whenever the kernel reports an address
// change (netlink), so an address added to lo is accepted as a tunnel
// destination within milliseconds.
type addrFollower struct {
	log *slog.Logger
	dp  addrWriter

	mu      sync.Mutex
	uplinks []string
	sources []config.TunnelSource
	last    []netip.Prefix // tunnel sources written last
	synced  bool

	done, exit chan struct{}
}

// settle is how long the follower waits after an address event for more
// before it syncs: adding many addresses costs one sync, not one each.
const settle = 50 * time.Millisecond

func newAddrFollower(log *slog.Logger, dp addrWriter) *addrFollower {
	return &addrFollower{log: log, dp: dp}
}

// configure sets the uplinks and tunnel sources and syncs the maps.
func (f *addrFollower) configure(uplinks []string, sources []config.TunnelSource) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	oldU, oldS := f.uplinks, f.sources
	f.uplinks, f.sources = slices.Clone(uplinks), slices.Clone(sources)
	if err := f.syncLocked(); err != nil {
		f.uplinks, f.sources = oldU, oldS
		return err
	}
	return nil
}

// start follows address changes until stop. The subscription starts
// before configure's first sync, so no change falls between the two.
func (f *addrFollower) start() {
	f.done, f.exit = make(chan struct{}), make(chan struct{})
	ch := make(chan netlink.AddrUpdate, 256)
	err := netlink.AddrSubscribeWithOptions(ch, f.done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case <-f.done:
			default:
				f.log.Warn("address updates", "error", err)
			}
		}})
	if err != nil {
		f.log.Warn("address changes are not followed: local addresses and on-link tunnel sources are updated at reload only", "error", err)
		close(f.exit)
		return
	}
	go func() {
		defer close(f.exit)
		for range ch {
			// Coalesce a burst of changes into one sync.
			timer := time.NewTimer(settle)
		drain:
			for {
				select {
				case _, ok := <-ch:
					if !ok {
						break drain
					}
				case <-timer.C:
					break drain
				}
			}
			timer.Stop()
			f.mu.Lock()
			if err := f.syncLocked(); err != nil {
				f.log.Warn("local addresses and tunnel sources not updated", "error", err)
			}
			f.mu.Unlock()
		}
	}()
}

func (f *addrFollower) stop() {
	if f.done == nil {
		return
	}
	select {
	case <-f.done:
	default:
		close(f.done)
	}
	<-f.exit
}

// syncLocked reads the kernel's addresses and writes both maps.
func (f *addrFollower) syncLocked() error {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	uplinks := map[int]bool{}
	for _, name := range f.uplinks {
		if l, err := netlink.LinkByName(name); err == nil {
			uplinks[l.Attrs().Index] = true
		}
	}
	local, onLink := classifyAddrs(addrs, uplinks)
	srcs := resolveTunnelSources(f.sources, onLink)
	if err := f.dp.SetLocalAddrs(local); err != nil {
		return err
	}
	if err := f.dp.SetTunnelSources(srcs); err != nil {
		return err
	}
	if !f.synced || !slices.Equal(srcs, f.last) {
		f.logSources(srcs)
	}
	f.last, f.synced = srcs, true
	return nil
}

func (f *addrFollower) logSources(srcs []netip.Prefix) {
	if len(srcs) == 0 {
		f.log.Warn("no tunnel sources: tunnel packets to this node are dropped (datapath.tunnel-sources)")
		return
	}
	s := make([]string, len(srcs))
	for i, p := range srcs {
		s[i] = p.String()
	}
	f.log.Info("tunnel packets accepted from", "tunnel_sources", s)
}

// classifyAddrs returns the node's local addresses (loopback and
// link-local ones left out) and the prefixes of the addresses on the
// uplinks (for a point-to-point address, its peer's prefix), sorted.
func classifyAddrs(addrs []netlink.Addr, uplinks map[int]bool) (local []netip.Addr, onLink []netip.Prefix) {
	seen := map[netip.Prefix]bool{}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() {
			continue
		}
		local = append(local, ip)
		if !uplinks[a.LinkIndex] {
			continue
		}
		p, ok := ipnetPrefix(a.IPNet)
		if a.Peer != nil {
			p, ok = ipnetPrefix(a.Peer)
		}
		if ok && !seen[p] {
			seen[p] = true
			onLink = append(onLink, p)
		}
	}
	slices.SortFunc(local, netip.Addr.Compare)
	local = slices.Compact(local)
	slices.SortFunc(onLink, comparePrefix)
	return local, onLink
}

func ipnetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	if ip.Is4() && bits == 128 {
		ones -= 96
	}
	p, err := ip.Prefix(ones)
	return p, err == nil
}

// resolveTunnelSources expands datapath.tunnel-sources: absent means
// "on-link"; "none" means no source at all. The result is sorted and
// without repeats.
func resolveTunnelSources(cfg []config.TunnelSource, onLink []netip.Prefix) []netip.Prefix {
	if len(cfg) == 0 {
		cfg = []config.TunnelSource{{Keyword: config.TunnelSourcesOnLink}}
	}
	var out []netip.Prefix
	for _, s := range cfg {
		switch s.Keyword {
		case config.TunnelSourcesNone:
			return nil
		case config.TunnelSourcesOnLink:
			out = append(out, onLink...)
		default:
			out = append(out, s.Prefix)
		}
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
