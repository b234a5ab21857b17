// Package lab is the rack in one command: a fabric of network namespaces
// with two top-of-rack switches, two aird load-balancer nodes and aird
// backend nodes whose backends are container endpoints, and a client.
// `make demo` shows it (cmd/airdlab) and the end-to-end tests in this
// directory exercise it.
//
//	                   client  fd00:c::1, 10.0.0.1 (the world beyond the rack)
//	                 c0 /     \ c1           ECMP default over both ToRs
//	        tor1: FRR 8          tor2: BIRD 2
//	unnumbered BGP + BFD         BGP by address + BFD (gateway recursive)
//	maximum-paths 8              merge paths (ECMP into the kernel)
//	    n1 n2 n3 n4                  n1 n2 n3 n4
//	     |  |  |  |                   |  |  |  |
//	up0 of every node            up1 of every node (fd00:12:i::2/64)
//	lb1, lb2 (AS 65001): announce VIP6 and VIP4 (six services), balance
//	    them in XDP with Maglev, encapsulate to the endpoints
//	be1, be2 (AS 65013, 65014): pod prefixes fd00:200:i::/64 and
//	    10.200.i.0/24; endpoints web-1.. made with `airctl endpoint add
//	    --netns --vip VIP6 --vip VIP4`; aird decapsulates for them in XDP
//	    and they answer the client directly (direct server return)
//
// Node i has the underlay address fd00:ff::i on lo: its BGP next hop, the
// source of its health probes. The ToRs resolve those next hops through
// routes they are given (tor2: BIRD static routes and `gateway
// recursive`; tor1: kernel routes via the node's link-local address), as
// a fabric's IGP would give them. Every node imports the default route
// from both ToRs (ECMP), so the LB nodes reach the endpoints and the
// endpoints reach the client through either ToR. IPv4 rides the IPv6
// underlay: IPv4 routes carry IPv6 next hops (RFC 8950) on both sessions,
// and IPv4 VIPs are tunnelled IPv4-in-IPv6. The IPv4 services are probed
// "direct" (aird's fallback: the nodes have no IPv4 underlay address).
//
// Services, on both VIPs: HTTP on port 80, a TCP echo on 8080 (the
// backend's name, then every line echoed), UDP on 8053 (each datagram
// answered with the backend's name); health checks every 300 ms, fall 3.
// BFD runs on every session with packets every 300 ms and a multiplier of
// 10 (a lost peer is noticed within 3 s: on a loaded shared machine a
// process can stall for most of a second, more than 900 ms would allow);
// the test of a lost ToR sets tor2's multiplier to 3 (900 ms) first.
//
// Every aird runs as a plain process (nsenter into its namespace, its own
// configuration, socket, pin path and STATE_DIRECTORY), not under
// systemd: a restart is the SIGUSR2 restart outside systemd (exit keeping
// routes, data plane and endpoints, then start again), and SIGTERM is a
// stop. TestRackSystemd hands lb1 over to a real systemd (systemd-nspawn
// booted in lb1's namespace with the host's bpffs, aird.service as
// installed plus a drop-in for the lab's paths) and tests systemctl
// restart and a SIGKILL that systemd recovers from under traffic.
//
// Every veth of the lab has transmit checksumming off and GRO on: a local
// socket's packets otherwise leave a veth with partial checksums, which an
// XDP redirect further on forwards as they are, and frames XDP redirects
// into a veth are received only with NAPI.
//
// A lab keeps its state (namespaces, processes by PID and start time,
// nodes) in /run/aird-lab/ID/state.json as it builds, so Down - on error,
// on ^C, at the end of a test, or `airdlab down` from another process -
// removes everything even when the builder was interrupted.
package lab
