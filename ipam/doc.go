// Package ipam owns address management: named pools of pod, VM and service
// addresses, and the allocation of single addresses (IPv6 and IPv4) from
// them to owners, kept in a crash-safe store.
//
// # Pools
//
// A Pool has a name, a Kind (pod, vm, service) and prefixes. The daemon
// builds the pools from the [ipam] configuration: a pod pool holds only
// this node's pod prefixes inside it (ipam.pod-prefixes), a vm or service
// pool all its prefixes. Prefixes of different pools never overlap, so an
// address belongs to at most one pool.
//
// Allocate never hands out the first address of a prefix (IPv4 network
// address, IPv6 Subnet-Router anycast), the IPv4 broadcast address (in
// prefixes up to /30), in IPv6 prefixes of /64 or shorter the
// Subnet-Router anycast and the 128 RFC 2526 reserved anycast addresses of
// every /64, an address some owner holds (Allocate or Reserve), nor an
// address configured on the node (Options.NodeAddrs, read at each
// allocation).
//
// # API
//
// Owners are strings such as "endpoint/web-1" or "service/dns" (at most
// MaxOwnerLen bytes, no spaces or control characters). An owner holds at
// most one address per family.
//
//	a, err := ipam.Open(ipam.Options{Path: dir + "/ipam.db", Pools: pools, NodeAddrs: f})
//	al, err := a.Allocate(ipam.Request{Owner: "endpoint/web-1", Family: ipam.IPv6, Kind: ipam.KindPod})
//	al, err := a.Allocate(ipam.Request{Owner: "endpoint/vm-1", Family: ipam.IPv4, Pool: "vms"})
//	al, err := a.Reserve("service/dns", netip.MustParseAddr("fd00:ffff::53"))
//	als := a.Lookup("endpoint/web-1")        // the owner's addresses, IPv6 first
//	released, err := a.Release("endpoint/web-1") // every family; nothing held is not an error
//	als = a.Allocations("")                  // all, or one pool's
//	ps := a.Pools()                          // size and use per pool
//	err = a.SetPools(pools)                  // on reload; allocations are kept
//
// Allocate is idempotent: the same owner and family get the same address
// until Release, whatever the request's pool or kind — asking for a
// different pool or kind than the one held is ErrConflict. Request.Pool
// names a pool; otherwise the pools of Request.Kind are tried in
// configuration order. Reserve records an address the caller chose (an
// explicit service VIP) so that Allocate never hands it out.
//
// Errors wrap the sentinels ErrNoPool, ErrExhausted, ErrConflict, ErrLimit
// and ErrClosed (test with errors.Is).
//
// # Cost
//
// Each pool keeps a cursor per family, the last address handed out; a
// search starts after it and steps over addresses in use, so an allocation
// costs O(1) amortized whatever the pool's size (a /64 is never scanned;
// BenchmarkPick). A released address is handed out again only after a full
// pass over its pool. A full pass that finds nothing is ErrExhausted.
//
// # Store and crash safety
//
// Allocations and cursors live in one bbolt file (Options.Path; the daemon
// uses ipam.db in $STATE_DIRECTORY, else /var/lib/aird). Each Allocate,
// Reserve and Release is one bbolt transaction, synced to disk (fsync)
// before the call returns, and the in-memory index changes only after the
// commit: an allocation a caller was told about survives kill -9 and power
// loss, and an address is never recorded for two owners (Open refuses a
// store that says otherwise). The file is locked (flock) while open: a
// second aird on the same state directory fails to start instead of
// sharing it. MaxAllocations (default DefaultMaxAllocations) bounds the
// store.
//
// Allocations outlive their pool: when a reload removes or shrinks a pool,
// the allocations in it are kept and reported as Orphan until released.
package ipam
