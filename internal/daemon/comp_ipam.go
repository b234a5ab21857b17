package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/ipam"
)

// defaultStateDir holds aird's persistent state when systemd does not set
// $STATE_DIRECTORY (StateDirectory=aird in the unit sets it to this).
const defaultStateDir = "/var/lib/aird"

// ipamComponent follows [ipam] and [[services]]: it owns the allocator and
// its store in the state directory, and gives every service without vip its
// VIP from a pool (filled into the configuration the lb and bgp components
// then apply). It runs before lb and bgp.
type ipamComponent struct {
	log *slog.Logger

	mu    sync.Mutex
	alloc *ipam.Allocator
}

func (c *ipamComponent) name() string { return "ipam" }
func (c *ipamComponent) sections() []string {
	return []string{config.SectionIPAM, config.SectionServices}
}

func (c *ipamComponent) apply(old, new *config.Config) error {
	if err := syncPodRoutes(new.IPAM.PodPrefixes); err != nil {
		if old != nil {
			_ = syncPodRoutes(old.IPAM.PodPrefixes)
		}
		return err
	}
	if err := c.applyAllocator(old, new); err != nil {
		if old != nil {
			_ = syncPodRoutes(old.IPAM.PodPrefixes)
		}
		return err
	}
	return nil
}

// applyChange syncs the VIPs of the changed services alone when only
// [[services]] changed.
func (c *ipamComponent) applyChange(old, new *config.Config, ch change) error {
	c.mu.Lock()
	a := c.alloc
	c.mu.Unlock()
	if a == nil || old == nil || ch.services == nil || !ch.only(c, config.SectionServices) {
		return c.apply(old, new)
	}
	return syncChangedVIPs(a, old, new, ch.services)
}

func (c *ipamComponent) applyAllocator(old, new *config.Config) error {
	pools := ipamPools(new)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alloc == nil {
		dir := stateDir()
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("ipam: state directory: %w", err)
		}
		a, err := ipam.Open(ipam.Options{Path: filepath.Join(dir, "ipam.db"), Pools: pools, NodeAddrs: nodeAddrs, Logger: c.log})
		if err != nil {
			return err
		}
		if err := syncServiceVIPs(a, new); err != nil {
			a.Close()
			return err
		}
		c.alloc = a
		return nil
	}
	if err := c.alloc.SetPools(pools); err != nil {
		return err
	}
	if err := syncServiceVIPs(c.alloc, new); err != nil {
		if old != nil {
			_ = c.alloc.SetPools(ipamPools(old))
		}
		return err
	}
	return nil
}

func (c *ipamComponent) allocator() *ipam.Allocator {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alloc
}

func (c *ipamComponent) close(stopIntent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alloc == nil {
		return nil
	}
	err := c.alloc.Close()
	c.alloc = nil
	return err
}

// stateDir is the first directory of $STATE_DIRECTORY (systemd may list
// several, colon-separated), else /var/lib/aird.
func stateDir() string {
	if s, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); s != "" {
		return s
	}
	return defaultStateDir
}

// ipamPools translates [ipam] into the allocator's pools: a pod pool holds
// only this node's pod prefixes inside it.
func ipamPools(c *config.Config) []ipam.Pool {
	out := make([]ipam.Pool, 0, len(c.IPAM.Pools))
	for _, p := range c.IPAM.Pools {
		ip := ipam.Pool{Name: p.Name, Kind: ipam.Kind(p.Kind)}
		if ip.Kind != ipam.KindPod {
			ip.Prefixes = append(ip.Prefixes, p.Prefixes...)
		} else {
			for _, pod := range c.IPAM.PodPrefixes {
				if poolCovers(p, pod) {
					ip.Prefixes = append(ip.Prefixes, pod)
				}
			}
		}
		out = append(out, ip)
	}
	return out
}

func poolCovers(p config.Pool, pod netip.Prefix) bool {
	for _, q := range p.Prefixes {
		if q.Bits() <= pod.Bits() && q.Contains(pod.Addr()) {
			return true
		}
	}
	return false
}

// nodeAddrs lists the addresses configured on any interface of the node (the
// network namespace aird runs in).
func nodeAddrs() ([]netip.Addr, error) {
	var as []netlink.Addr
	var err error
	// A dump that an address change interrupts (links and their
	// link-local addresses come and go with endpoints) is asked again.
	for range 5 {
		if as, err = netlink.AddrList(nil, netlink.FAMILY_ALL); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if x, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, x.Unmap())
		}
	}
	return out, nil
}
