// Package bpf owns aird's BPF C sources and the Go bindings bpf2go generates
// from them, plus the small Go side that must agree with the C code byte
// for byte: the flow hash (FlowHash), the conntrack set hash
// (ConntrackHash), the map key encodings and LB, which
// writes services, backends, Maglev tables, allow lists, settings and decap
// addresses into the maps.
//
// # Layout
//
// There is exactly one XDP entry program, aird_xdp in xdp.c, attached once
// per uplink NIC (plus the probe stage's tc program, below). It is a pipeline: a shared parser builds a struct packet
// and then stages, each a static __always_inline function in its own
// header, run in order; a stage returns a verdict or STAGE_CONTINUE:
//
//	common.h   vendored headers in the right order, macro fix-ups
//	proto.h    wire layouts (VLAN, IPv4, IPv6 and extension headers, TCP,
//	           UDP, ICMP), no bitfields
//	parse.h    struct packet, enum family, parse_packet(): Ethernet, two
//	           VLAN tags, IPv4/IPv6, up to 6 IPv6 extension headers
//	           (hop-by-hop, routing, destination options, AH, fragment),
//	           L4 ports and TCP flags, fragment and truncation flags
//	pipeline.h the stage protocol (STAGE_CONTINUE), the pipeline-wide maps
//	           (settings, node_addrs, pipeline_stats, ...) and the
//	           helpers that count into them
//	stats.h    the count stage
//	csum.h     Internet checksum helpers (fold, RFC 1624 update)
//	flow.h     struct flow_key and the flow hash
//	lb_maps.h  the lb stage's maps and their value types
//	decap.h    the decap stage
//	icmp.h     echo replies and generated too-big messages
//	encap.h    encapsulation, next hop (FIB + cache), TX/redirect/pass
//	lb.h       the lb stage: service lookup, conntrack, Maglev
//	hc.h       the probe stage: tunnels the node's own health probes
//	xdp.c      the entry programs: aird_xdp wiring the stages together,
//	           aird_hc (tcx egress on lo) running the probe stage
//
// The pipeline: parse -> count -> decap -> lb -> XDP_PASS.
//
// # The decap stage
//
// Untagged IPv6 packets with upper-layer protocol 41 or 4, and IPv4
// packets with protocol 4 or 41, addressed to a node_addrs entry with
// NODE_ADDR_F_DECAP (the node's underlay addresses) lose their outer header in XDP and go to the
// kernel as the inner packet (a local backend has its VIPs on lo; no
// tunnel device is needed). A bad inner packet or a fragmented outer one is
// a counted drop.
//
// # The lb stage
//
// vips maps (address, port, protocol) to a vip_id and flags; port 0 is a
// VIP-wide service, and (address, 0, 0) the address entry that marks an
// address as a VIP (echo replies; traffic matching no service is dropped,
// not passed). Addresses are 16 bytes, IPv4 as IPv4-mapped IPv6. Lookup:
// exact port, then port 0 (unless VIP_F_FRAGMENTS_ONLY). Fragments - every
// fragment of a datagram, the first included - match only the port-0 entry
// (a VIP_F_FRAGMENTS_ONLY entry can route a port service's fragments) and
// are hashed on (src, dst, proto), so all fragments of a datagram meet one
// backend; VIP_F_NO_PORTS services hash every packet that way (client
// affinity). VIP_F_ALLOWLIST services check the source against the allow
// LPM trie (vip_id, source prefix).
//
// The flow hash (flow.h, mirrored by FlowHash) picks the Maglev slot:
// hash % M into the vip_id's table in maglev (an ARRAY_OF_MAPS of
// BPF_F_INNER_MAP tables, each of its own size M, recorded in its header;
// installing a new inner map switches tables atomically; see MaglevTable).
// The slot holds a 16-bit index into the table's backend list (0: empty),
// which gives the backend id into backends. maglev_meta records, for the
// control plane only, what each installed table was built from. conntrack
// (conntrack_v2) keeps the choice per flow, so a changed table moves only
// new flows: it is an ARRAY of 4-way sets, one partition per CPU, picked
// by measurement over the kernel's LRU maps (see docs/performance.md). A
// flow's set comes from the conntrack hash (flow.h, mirrored by
// ConntrackHash: one multiplication), and an entry keeps the flow hash's
// bits the outer header takes, so a conntrack hit computes no flow hash. A
// TCP SYN always takes the table.
//
// The packet is encapsulated - IPv6 VIPs in IPv6, IPv4 VIPs in IPv6 or in
// IPv4 depending on the backend - with an outer source from the settings
// whose low bits come from the flow hash (receivers' RSS and ECMP spread
// it). As a tunnel entry point (RFC 2473 3.1) the LB decrements the inner
// hop limit/TTL; a packet arriving with 1 or 0 is passed unchanged to the
// kernel, which sends time exceeded. bpf_fib_lookup on the backend gives the
// next hop and the MTU, cached per backend and CPU in backend_cpu for
// settings' nexthop_ttl jiffies; the egress decides XDP_TX (same
// interface) or bpf_redirect; no neighbour yet means XDP_PASS of the
// encapsulated packet (the kernel resolves and forwards it). A packet too
// big for the path is answered with ICMPv6 packet too big / ICMPv4
// fragmentation needed (DF only) built in XDP, quoting 512 bytes.
// ICMP echo requests to a VIP are answered in XDP; ICMP errors quoting a VIP
// flow go to that flow's backend. Only untagged frames are load balanced or
// decapsulated (tagged ones pass untouched), and packets whose length the
// header does not give (IPv6 payload length 0: jumbograms, or GRO'd packets
// in generic XDP mode) are dropped rather than cut: run generic mode with
// GRO off on the uplink, or the LB sees (and answers with too-big) packets
// larger than any wire frame.
//
// Counters, all per-CPU: pipeline_stats, one value (struct
// pipeline_counters) holding the packets and bytes per enum family, the
// events (enum lb_stat: conntrack hit/miss/insert/evict, TX, redirect,
// no-neighbour pass, too big relayed/generated, decap, ...) and the drops
// (enum drop_reason): the count stage looks it up for the family, and the
// lb stage once more for a VIP's packet, whose every later count goes
// through that pointer (pipeline.h); vip_stats and backend_cpu's traffic
// (packets, bytes; beside the backend's next hop, one lookup for both).
//
// # The probe stage
//
// aird_hc, a tcx egress program in the same object (so it shares every
// map), runs on lo. A packet whose mark is ProbeMark(id) - a health probe
// that policy routing sent to lo - is encapsulated to backend id like the
// lb stage would (outer source from the settings and the flow hash; inner
// packet untouched, its pending checksum left for the uplink to finish),
// routed with bpf_fib_lookup as if it had arrived on the uplink in hc_conf,
// and sent with bpf_redirect_neigh. Unmarked packets pass untouched; a
// marked packet that cannot be tunnelled is dropped and counted
// (LB_STAT_HC_*).
//
// # Map stability
//
// internal/datapath pins every map and adopts compatible pins on restart,
// so layouts only grow: enums are appended (struct pipeline_counters has
// room for 8 families, 64 events and 64 drop reasons), struct pipeline_settings grows into its reserved words. The
// id spaces are sized at load (Config.MaxVIPs, Config.MaxBackends; 65536
// each by default, 3 vips entries per vip id); the maps that refer to ids
// are adopted only together with the maps that define them
// (IDOwnerMaps, IDDependentMaps).
//
// # Generated files
//
// datapath_bpfel.go/.o are generated by `go generate ./bpf/` (the
// benchmarks' floor objects by `go generate ./bench/`; clang-14, llvm-strip-14) and committed, so building aird needs
// no C toolchain. Go types for C types come from BTF (bpf2go -type), never
// from hand-written mirrors: struct vip_key is DatapathVipKey, enum
// drop_reason DatapathDropReason, and so on; the names of enumerators used
// in stats come from the object's BTF too. Generation is reproducible byte
// for byte and independent of the checkout path; check-generated.sh (run by
// CI) regenerates and fails when the committed output differs.
//
// Headers come only from include/ (compiled with -nostdinc); see
// include/README.md for their origin and licenses.
//
// # Map sets and writers
//
// Every map belongs to exactly one set (maps.go): PipelineMaps, written by
// Node (the owner of the data plane), and LBMaps, written by LB (the load
// balancer's control plane). NewObjects splits a loaded collection into the
// sets with ebpf.Collection.Assign, from the sets' struct tags, and fails
// when a map or program has no set; nothing else names maps.
//
// Attaching the program, pinning and adoption across restarts belong to
// internal/datapath; this package only provides the objects.
package bpf
