// Package bgp is aird's embedded BGP speaker: GoBGP v4 running in the aird
// process (this is the only package that imports it), configured from
// [bgp] and [[bgp.peers]], advertising the node's pod prefixes and service
// VIPs to the top-of-rack switches and installing what they send (and the
// import policy accepts) into the kernel FIB.
//
// # Lifecycle
//
// New checks the configuration; SetAdvertised records the initial routes;
// Start runs GoBGP, installs the policies, announces the routes and adds
// the peers; Apply follows reloads; Stop ends it. A Speaker runs once.
//
// Stop(StopRestart) closes the sessions without a NOTIFICATION (GoBGP's
// StopBgp with AllowGracefulRestart: graceful-restart peers only see the
// TCP connection close) and leaves the installed routes in the kernel.
// Peers that negotiated graceful restart (RFC 4724) keep our routes as
// stale. A restart marker (StateDir/bgp-restart, refreshed every few
// seconds while running, so a crash counts too) tells the next Start that
// it restarts: if the marker is younger than the restart time, that Start
// sets the Restart State and Forwarding State bits (also in the first
// session of an unnumbered peer that discovery finds afterwards, within
// the restart time: without them FRR flushes the routes it kept for us
// as the session comes up), GoBGP defers its
// updates until the peers' End-of-RIB (at most 30 s) and then sends
// everything followed by End-of-RIB, so peers swap stale routes for fresh
// ones without a withdrawal. Stop(StopShutdown) withdraws our routes, then
// sends CEASE to every peer (they converge at once, even when the CEASE is
// lost to a reset), removes the installed routes and the marker.
// The RFC 8538 N-bit is not advertised, so a CEASE always flushes.
//
// # Advertising
//
// SetAdvertised takes the complete set of locally originated routes and
// diffs it against what GoBGP holds: withdrawals and announcements go to
// GoBGP in batches (AddPath and DeletePath take many paths per call). The
// next hop, set by the export policy, is the node's underlay address of
// the route's family (see planNexthop): GoBGP announces Extended Next Hop
// (RFC 8950) but sends IPv6 next hops for IPv4 routes whether or not the
// peer announced it too, so IPv4 routes that could only carry an IPv6
// next hop (no IPv4 underlay address, or an unnumbered session) are sent
// to a peer only once its OPEN announced Extended Next Hop for IPv4
// unicast; the speaker remembers that per peer address (and across a
// restart, in StateDir/bgp-extended-nexthop), so later sessions send the
// right thing from their first UPDATE. Without an
// underlay address of that family GoBGP uses the session's local address.
// With several uplinks every switch must reach the underlay address (a
// loopback the switches resolve recursively); a switch that only accepts
// on-link next hops drops the routes.
//
// # Policy
//
// GoBGP keeps per-peer policies for route-server clients only, so aird
// installs one global import policy and one global export policy whose
// statements each match one peer by a neighbour set. Import: our own
// paths, then for each peer the prefixes of import.prefixes; the default
// rejects. Export: only locally originated paths, with [bgp] and peer
// communities and large communities added, the peer's MED and AS-path
// prepend; the default rejects, so the node never re-advertises what it
// learned.
//
// # FIB
//
// A reconciler keeps the kernel table Options.FIBTable in step with the
// RIB, after GoBGP's events (batched over 100 ms): each prefix whose best
// paths come from peers is installed with one next hop per path of the
// multipath set (ECMP across the peers that send the same prefix with
// equal attributes), stamped with Options.RouteProtocol and metric 20. A
// route whose paths are all gone (withdrawn, session lost,
// graceful-restart timer expired) is deleted. The reconciler follows
// GoBGP's best-path events (multipath deltas) and the UPDATEs from peers
// in a copy of what it needs (ribState) instead of reading the RIB back;
// it reads GoBGP's RIB only after a policy change and after a peer's
// graceful restart, the two changes GoBGP reports no event for. A pass
// touches only the prefixes that changed. Changes go to the kernel in
// batches (routeWriter: many rtnetlink messages per sendmsg). Every 5 s
// (or 20 times as long as the last check took, with a large table) the
// kernel table is read and compared with what was installed, putting
// back what someone else changed and retrying what the kernel refused.
// After Start, routes
// with our protocol that this process did not install (left by the
// previous process) are deleted only once the RIB is synced: every peer
// configured at Start is established and sent End-of-RIB for each family
// it negotiated, or the graceful-restart time passed. Stop(StopShutdown)
// deletes all of them.
//
// A prefix the node originates itself is never installed from a peer.
// Routes from a link-local peer (link-local next hop) are installed on its
// interface; IPv4 ones as "via inet6 fe80::… dev …".
//
// import.max-prefixes counts the paths a peer has in the RIB after the
// import policy. A peer over its limit is sent NOTIFICATION Cease /
// Maximum Number of Prefixes Reached (RFC 4486; see maxprefix.go for how
// GoBGP is made to send it) and its paths are not installed; it is held
// down for Options.MaxPrefixRetry (30 s), doubling each consecutive time
// up to 16 times, then may reconnect and is sent the same again if it
// still sends too many. Other sessions are not affected.
//
// Neighbors decodes the last NOTIFICATION sent to and received from each
// peer (from GoBGP's disconnect reasons; the speaker's own Cease/1 too),
// says for how long a session has been in its state, and hints at a TCP
// MD5 mismatch when a peer with a password never gets past TCP (with the
// kernel's MD5 drop counters).
//
// # Unnumbered peers
//
// A peer with interface = "eth1" has no configured address. While the
// speaker runs, a linklocal.Discoverer on the interface sends Router
// Advertisements with router lifetime 0 (every Options.RAInterval, 10 s,
// at once when an RS arrives, and three a second apart starting a second
// after the link comes up, none before: FRR's `neighbor IFACE interface`
// learns the node only from them, and before FRR 10 can lose for good one
// sent while it handles the link coming up) and learns the
// switch's link-local address from its RAs, or from its neighbour
// solicitations for a switch that sends none (BIRD configured with the
// node's address). When the address appears the peer becomes the GoBGP
// neighbour fe80::x%eth1, bound to the interface (SO_BINDTODEVICE, and
// BFD's socket too); when it changes the neighbour is replaced; when the
// link goes down it is deleted at once (rtnetlink link events) and added
// again when the switch is found again. A discovered peer is never
// forgotten for silence alone. Discovery on an interface that does not
// exist yet or has no link-local address is retried every 5 s. A
// configured link-local address (fe80::1%eth1) works the same way, without
// discovery. Until found, the peer is listed by Neighbors in state idle
// and counts as not synced for the FIB (see below). The import and export
// statements of a link-local peer match its address without the zone:
// two link-local peers with the same address on different interfaces get
// each other's policy too.
//
// # BFD
//
// [bgp.peers.bfd] enabled = true runs GoBGP's single-hop BFD (RFC 5880,
// 5881: UDP 3784, TTL 255) with the peer, with min-tx, min-rx and
// multiplier; it is off unless configured. When BFD detects the peer gone
// (multiplier × the negotiated interval without a packet; 900 ms with 300
// ms × 3, measured 0.7-0.8 s from a cut link to the session down) GoBGP
// resets the BGP session at once instead of waiting for the hold time.
// GoBGP then holds the session down for its 30 s idle hold time, as after
// any reset. Neighbors reports the BFD state; a change to the BFD settings
// resets the session. On a graceful restart a BFD peer's session opens
// only once its BFD session is up (at most bfdHoldMax later): the peer's
// BFD session with the previous process would otherwise expire after the
// new BGP session came up, and take it down (see holdsForBFD).
//
// # Drain
//
// Drain takes the node out of service (RFC 8326): every route is
// announced again (export policy plus soft reset out, no session reset)
// with GRACEFUL_SHUTDOWN (65535:0) and drain.prepend more AS-path
// prepends, then after drain.wait everything is withdrawn. Routes passed
// to SetAdvertised while the GRACEFUL_SHUTDOWN announcement lasts get it
// too; after the withdrawal SetAdvertised only records them. Undrain
// announces everything normally again. Sessions stay up and learned
// routes stay installed throughout. The drain survives a restart (an
// upgrade, a crash): a marker in Options.StateDir (drainMarker) makes the
// next Start come up drained, announcing nothing until Undrain; a stop and
// start or a reboot, which clear /run/aird, forget it.
//
// # Metrics
//
// Collector returns a Prometheus collector that reads the speaker at
// scrape time: aird_bgp_peer_state{peer,state} (1 for the current state),
// aird_bgp_peer_uptime_seconds, aird_bgp_peer_flaps_total (established
// sessions that went down, including ones replaced by a reload or an
// unnumbered address change), aird_bgp_peer_bfd_up (BFD peers only),
// aird_bgp_peer_routes_{received,accepted,advertised}{peer,family},
// aird_bgp_peer_family_sendable{peer,family}, aird_bgp_fib_routes{family},
// aird_bgp_fib_reconcile_errors_total, aird_bgp_gobgp_log_repeats_total
// and aird_bgp_drained. The peer label is the configured name, else the
// address or the interface.
//
// # Reload
//
// Apply adds, deletes or re-adds (when session parameters changed) only
// the peers that changed and soft-resets those whose policy changed; the
// other sessions are untouched. Discovery starts and stops with the
// unnumbered peers. asn, router-id, listen-port and grpc-socket need a
// restart (ErrRestartNeeded).
//
// # Not supported
//
// hold-time 0 is refused (GoBGP cannot run a session without
// keepalives). The FQDN capability carries the OS hostname, not
// node.name: GoBGP reads it itself (os.Hostname in capabilitiesFromConfig)
// when it builds the OPEN and has no setting for it, and a UTS namespace
// of aird's own would need CAP_SYS_ADMIN. An unnumbered session sends the link-local next hop alone
// (a 16-byte next hop), never global plus link-local.
//
// The gRPC API of GoBGP (for the gobgp CLI) is served when grpc-socket is
// set, on that unix socket only, mode 0600.
package bgp
