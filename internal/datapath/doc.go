// Package datapath attaches aird's XDP pipeline (package bpf) to the node's
// uplinks and keeps it running across aird restarts.
//
// # Pin layout
//
// Everything lives under Options.PinPath (normally /sys/fs/bpf/aird, on the
// BPF filesystem mounted at /sys/fs/bpf):
//
//	<PinPath>/maps/<map name>      one pin per map of the collection,
//	                               e.g. maps/pipeline_stats
//	<PinPath>/links/xdp_<ifname>   one XDP bpf_link per uplink,
//	                               e.g. links/xdp_eth0
//	<PinPath>/links/tcx_lo         the probe program's tcx bpf_link
//	                               (AttachProbeEgress), once attached
//
// bpffs rejects names containing '.', so in pin names '%' is written %25
// and '.' %2e: eth0.100 is pinned as links/xdp_eth0%2e100.
//
// The program itself is not pinned: each link holds a reference to the
// program it runs, and that program holds its maps.
//
// # Adopt-on-restart contract
//
// Close releases only this process's file descriptors. Pinned links and maps
// stay, so XDP keeps forwarding (and counting) while aird is down. The next
// Open reuses every pinned map whose type, key/value size, max entries and
// flags still match the new object (counters and state survive); an
// incompatible map is replaced with a warning. The next SetUplinks adopts a
// pinned link whose interface still has the same ifindex (and, unless
// XDPMode is "auto", the same mode) by replacing its program atomically
// (bpf_link update: no moment without a program). A stale pin (interface
// recreated, or another mode requested) is replaced by a fresh attachment.
// Only Teardown (aird --cleanup, tests) detaches links and removes the pins.
//
// # Maps and their owners
//
// The loaded object is split into map sets (bpf.Objects), each with one
// writer. The datapath owns and writes the pipeline's maps (bpf.Node):
// SetSettings and SetNodeAddrs (the underlay addresses tunnel packets are
// decapsulated for), the probe configuration, and it reads the counters
// (PipelineStats: one reading of families, events and drops). LBMaps hands the lb stage's maps to
// their one writer, the load balancer's control plane (lb.Programmer,
// through bpf.LB). A pin whose map the object no longer has (an upgrade
// renamed or dropped it) is found at Open and removed once the new program
// is attached (the first SetUplinks that succeeds), so a start that fails
// before leaves the older version its maps; an older map whose carry-over
// failed (conntrack, counters) stays pinned until a later start.
//
// Options.MaxVIPs, Options.MaxBackends and Options.ConntrackSize size the
// lb maps at load time. A pinned maglev (an ARRAY_OF_MAPS) is adopted only
// when its inner maps have the layout of the object's inner template (key,
// value size, flags; every table has its own size): the kernel fixes the
// inner layout when the outer map is created, and Compatible does not
// check it. An empty pinned maglev is replaced (it holds nothing). The
// maps that refer to vip and backend ids (bpf.IDDependentMaps, conntrack
// among them) are adopted only together with the maps that define the ids
// (vips and backends): when those are replaced, an old conntrack entry
// would send a flow to whatever backend gets its id next. Otherwise
// conntrack is adopted like any map when its size matches, so established
// flows keep their backend across a restart.
//
// # Health probes
//
// AttachProbeEgress attaches the probe program (bpf.ProgramHC) to lo's
// egress with a pinned tcx link, adopted on restart like the XDP links, and
// keeps its FIB interface (the first uplink) in step with SetUplinks.
// InstallProbeRouting adds the policy rule and the local routes of table
// ProbeTable that send packets marked bpf.ProbeMark(id) to lo, where the
// program tunnels them to backend id; RemoveProbeRouting takes them away.
// Teardown detaches the probe link and, if there was one, removes the
// probe routing of the calling thread's namespace.
//
// # Network namespaces
//
// Pins are global (bpffs) but interfaces belong to a network namespace.
// Interface names are resolved and links attached in the network namespace
// of the calling OS thread; the package starts no goroutines. To manage
// uplinks of another namespace, lock the goroutine to its thread
// (runtime.LockOSThread), switch the thread's namespace and call
// SetUplinks from there.
package datapath
