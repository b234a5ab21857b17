package ipam

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Kind says what a pool's addresses are for.
type Kind string

// Pool kinds.
const (
	KindPod     Kind = "pod"     // containers (veth endpoints) on this node
	KindVM      Kind = "vm"      // virtual machines (tap endpoints)
	KindService Kind = "service" // load-balanced VIPs
)

// Family is an address family: "ipv6" or "ipv4".
type Family string

// Address families.
const (
	IPv6 Family = "ipv6"
	IPv4 Family = "ipv4"
)

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

func (f Family) valid() bool { return f == IPv6 || f == IPv4 }

// Pool is one named range of addresses handed out by the allocator. For a
// pod pool, Prefixes are only this node's pod prefixes inside it (the pool
// itself spans every node).
type Pool struct {
	Name     string
	Kind     Kind
	Prefixes []netip.Prefix
}

// Limits on what callers may ask for; the API passes caller input through.
const (
	MaxOwnerLen = 253 // bytes in an owner key
	// DefaultMaxAllocations bounds the store (and memory) when
	// Options.MaxAllocations is 0.
	DefaultMaxAllocations = 1 << 20
)

// Options configure an Allocator.
type Options struct {
	// Path is the store file (bbolt). Its directory must exist.
	Path  string
	Pools []Pool
	// NodeAddrs lists the addresses configured on the node (any
	// interface). Allocate never hands one of them out. Nil: none.
	NodeAddrs func() ([]netip.Addr, error)
	// MaxAllocations bounds the number of allocations; 0 means
	// DefaultMaxAllocations.
	MaxAllocations int
	// LockTimeout bounds the wait for the store's file lock, held by
	// another aird using the same state directory. 0 means 2s.
	LockTimeout time.Duration
	Logger      *slog.Logger
}

func (o *Options) validate() error {
	if o.Path == "" {
		return errors.New("ipam: no store path")
	}
	if o.MaxAllocations == 0 {
		o.MaxAllocations = DefaultMaxAllocations
	}
	if o.MaxAllocations < 0 {
		return fmt.Errorf("ipam: negative MaxAllocations %d", o.MaxAllocations)
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return validatePools(o.Pools)
}

// validatePools checks names, kinds and that no two prefixes overlap: an
// address belongs to at most one pool.
func validatePools(pools []Pool) error {
	names := map[string]bool{}
	var all []netip.Prefix
	for _, p := range pools {
		if p.Name == "" {
			return errors.New("ipam: a pool without a name")
		}
		if names[p.Name] {
			return fmt.Errorf("ipam: duplicate pool %q", p.Name)
		}
		names[p.Name] = true
		switch p.Kind {
		case KindPod, KindVM, KindService:
		default:
			return fmt.Errorf("ipam: pool %q: unknown kind %q", p.Name, p.Kind)
		}
		for _, pfx := range p.Prefixes {
			if !pfx.IsValid() || pfx != pfx.Masked() || pfx.Addr().Zone() != "" || pfx.Addr().Is4In6() {
				return fmt.Errorf("ipam: pool %q: bad prefix %s", p.Name, pfx)
			}
			for _, q := range all {
				if q.Overlaps(pfx) {
					return fmt.Errorf("ipam: pool %q: prefix %s overlaps %s", p.Name, pfx, q)
				}
			}
			all = append(all, pfx)
		}
	}
	return nil
}

// Request asks for one address.
type Request struct {
	Owner  string // who holds the address, e.g. "endpoint/web-1", "service/dns"
	Family Family
	// Pool names the pool; empty means the first pool of Kind (in
	// configuration order) with a free address of the family.
	Pool string
	Kind Kind
}

func (r Request) validate() error {
	if err := validOwner(r.Owner); err != nil {
		return err
	}
	if !r.Family.valid() {
		return fmt.Errorf("bad family %q: use ipv6 or ipv4", r.Family)
	}
	if r.Pool == "" && r.Kind == "" {
		return errors.New("a pool or a kind is required")
	}
	return nil
}

func validOwner(owner string) error {
	if owner == "" {
		return errors.New("an owner is required")
	}
	if len(owner) > MaxOwnerLen {
		return fmt.Errorf("owner is %d bytes long; at most %d", len(owner), MaxOwnerLen)
	}
	for _, c := range owner {
		if c < 0x21 || c == 0x7f {
			return fmt.Errorf("owner %q contains a space or control character", owner)
		}
	}
	return nil
}

// Allocation is one address held by an owner.
type Allocation struct {
	Owner   string     `json:"owner"`
	Family  Family     `json:"family"`
	Addr    netip.Addr `json:"address"`
	Pool    string     `json:"pool"`
	Kind    Kind       `json:"kind"`
	Created time.Time  `json:"created"`
	// Reserved is true for an address recorded with Reserve (chosen by
	// the caller) rather than picked by Allocate.
	Reserved bool `json:"reserved,omitempty"`
	// Orphan is true when no configured pool holds the address any more
	// (its pool was removed or shrunk); it stays allocated until released.
	Orphan bool `json:"orphan,omitempty"`
}
