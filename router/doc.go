// Package router owns the node's endpoints - containers behind a veth pair
// and VMs behind a tap device - and their routing: addresses from IPAM, the
// links and kernel state each needs, and the router stage's maps (through
// bpf.Router), so that traffic between the uplinks and the endpoints, and
// between endpoints, is forwarded by XDP, with the kernel's own forwarding
// as the fallback for what the fast path leaves to it.
//
// # Endpoints
//
// A container endpoint (Request.Netns) gets a veth pair: the host side,
// named "air" + 11 hex digits of a hash of the endpoint's name, stays in
// the node's namespace; the other side is created in the container's
// namespace as Request.Ifname (default eth0), with a MAC derived from the
// name. Inside the namespace the endpoint gets its addresses as /128 and
// /32 (no on-link prefix: everything goes to the gateway), a default route
// via fe80::1 (IPv6) and 169.254.1.1 (IPv4, on-link) and permanent
// neighbour entries mapping both gateways to the host side's MAC, so it
// needs no neighbour discovery; its VIPs (Request.VIPs, for direct server
// return) go on its lo. Transmit checksum offload is turned off on that
// side (XDP forwards raw frames, so checksums must be complete) and GRO on
// (a veth receives frames redirected by XDP only with NAPI, which GRO
// enables).
//
// A VM endpoint (Request.Tap) takes an existing tap device. The guest
// configures its own addresses; the tap's host side gets fe80::1/64 and
// 169.254.1.1/32 so the guest's gateway resolves, and the guest's MAC is
// learned from the kernel's neighbour table (or given with Request.MAC).
//
// On the host side of both, aird installs a route to each address (proto
// RouteProtocol) and, for containers, a permanent neighbour entry, enables
// forwarding, and attaches the endpoint program (aird_xdp_ep) that checks
// the sources the endpoint sends from and routes what it sends.
//
// # State
//
// Endpoints are kept in a bbolt file (endpoints.db in the state directory)
// and adopted at start: links, routes and pinned programs are kept (never
// recreated), the maps rewritten. An endpoint whose link is gone is
// reported as missing until deleted. Allocations of "endpoint/NAME" owners
// without a record, and host links of the name pattern without a record,
// are what a crash in the middle of an Add left behind: Adopt removes them.
package router
