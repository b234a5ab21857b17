package config

import "net/netip"

// Config is the whole of aird.toml. Keys are kebab-case; every key is
// documented in docs/configuration.md.
type Config struct {
	// Include lists further files of [[services]] (glob patterns, relative
	// to this file's directory), read in order, each pattern's matches in
	// lexical order (include.go).
	Include  []string  `toml:"include" json:"include,omitempty"`
	Node     Node      `toml:"node" json:"node"`
	Datapath Datapath  `toml:"datapath" json:"datapath"`
	BGP      *BGP      `toml:"bgp" json:"bgp,omitempty"` // nil: no BGP speaker
	IPAM     IPAM      `toml:"ipam" json:"ipam"`
	LB       LB        `toml:"lb" json:"lb"`
	Services []Service `toml:"services" json:"services"`
	API      API       `toml:"api" json:"api"`
	Metrics  Metrics   `toml:"metrics" json:"metrics"`
	Log      Log       `toml:"log" json:"log"`
}

// Node describes the machine aird runs on.
type Node struct {
	Name     string       `toml:"name" json:"name"`
	RouterID netip.Addr   `toml:"router-id" json:"router_id"`
	Underlay []netip.Addr `toml:"underlay" json:"underlay"`
	Uplinks  []string     `toml:"uplinks" json:"uplinks"`
}

// Datapath configures the XDP pipeline attached to the uplinks.
type Datapath struct {
	PinPath string `toml:"pin-path" json:"pin_path"`
	XDPMode string `toml:"xdp-mode" json:"xdp_mode"`
	// Forwarding is "enable" (aird turns IPv4 and IPv6 forwarding on for
	// each uplink: bpf_fib_lookup refuses to forward otherwise) or "keep"
	// (aird leaves the sysctls alone and warns when forwarding is off).
	Forwarding string `toml:"forwarding" json:"forwarding"`
	// TunnelSources are the outer sources tunnel packets to the node (and
	// to its DSR endpoints) are accepted from: prefixes, "on-link" (the
	// uplinks' prefixes) or "none". Absent or empty: ["on-link"].
	TunnelSources []TunnelSource `toml:"tunnel-sources" json:"tunnel_sources"`
	// Uplink holds per-uplink settings ([[datapath.uplink]]), for uplinks
	// listed in node.uplinks; an uplink without an entry takes the
	// defaults.
	Uplink []UplinkOptions `toml:"uplink" json:"uplink"`
}

// UplinkOptions are the settings of one uplink.
type UplinkOptions struct {
	// Name is the uplink, as listed in node.uplinks.
	Name string `toml:"name" json:"name"`
	// FlowAffinity says whether every packet of a flow received on the
	// uplink is processed on one CPU: "one-cpu" (a NIC whose RSS keeps a
	// flow on one queue), "any-cpu" (veth, tap: XDP runs on the sending
	// CPU) or "auto" (the default: from the link's kind). On a one-cpu
	// uplink conntrack skips the other CPUs' partitions for new flows.
	FlowAffinity string `toml:"flow-affinity" json:"flow_affinity"`
}

// BGP configures the embedded BGP speaker.
type BGP struct {
	ASN              ASN             `toml:"asn" json:"asn"`
	RouterID         netip.Addr      `toml:"router-id" json:"router_id"`
	ListenPort       int             `toml:"listen-port" json:"listen_port"`
	HoldTime         Duration        `toml:"hold-time" json:"hold_time"`
	KeepaliveTime    Duration        `toml:"keepalive-time" json:"keepalive_time"`
	ConnectRetry     Duration        `toml:"connect-retry" json:"connect_retry"`
	GRPCSocket       string          `toml:"grpc-socket" json:"grpc_socket"`
	Communities      []string        `toml:"communities" json:"communities"`
	LargeCommunities []string        `toml:"large-communities" json:"large_communities"`
	Advertise        Advertise       `toml:"advertise" json:"advertise"`
	GracefulRestart  GracefulRestart `toml:"graceful-restart" json:"graceful_restart"`
	Drain            Drain           `toml:"drain" json:"drain"`
	Peers            []Peer          `toml:"peers" json:"peers"`
}

// Advertise selects what the node announces.
type Advertise struct {
	PodPrefixes bool `toml:"pod-prefixes" json:"pod_prefixes"`
	ServiceVIPs bool `toml:"service-vips" json:"service_vips"`
}

// GracefulRestart configures RFC 4724 graceful restart.
type GracefulRestart struct {
	Enabled     bool     `toml:"enabled" json:"enabled"`
	RestartTime Duration `toml:"restart-time" json:"restart_time"`
}

// Drain configures the maintenance drain (RFC 8326 GRACEFUL_SHUTDOWN).
type Drain struct {
	Wait    Duration `toml:"wait" json:"wait"`
	Prepend int      `toml:"prepend" json:"prepend"`
}

// Peer is one BGP neighbour, by address or, for unnumbered peering, by
// interface.
type Peer struct {
	Name             string     `toml:"name" json:"name"`
	Address          netip.Addr `toml:"address" json:"address"`
	Interface        string     `toml:"interface" json:"interface"`
	ASN              PeerASN    `toml:"asn" json:"asn"`
	Password         string     `toml:"password" json:"-"`
	PasswordFile     string     `toml:"password-file" json:"password_file"`
	Multihop         int        `toml:"multihop" json:"multihop"`
	TTLSecurity      bool       `toml:"ttl-security" json:"ttl_security"`
	Passive          bool       `toml:"passive" json:"passive"`
	Families         []string   `toml:"families" json:"families"`
	HoldTime         Duration   `toml:"hold-time" json:"hold_time"`
	KeepaliveTime    Duration   `toml:"keepalive-time" json:"keepalive_time"`
	Communities      []string   `toml:"communities" json:"communities"`
	LargeCommunities []string   `toml:"large-communities" json:"large_communities"`
	MED              int64      `toml:"med" json:"med"`
	Prepend          int        `toml:"prepend" json:"prepend"`
	Import           Import     `toml:"import" json:"import"`
	BFD              BFD        `toml:"bfd" json:"bfd"`
}

// Import is a peer's import policy: deny unless a prefix filter allows.
type Import struct {
	Prefixes    []PrefixFilter `toml:"prefixes" json:"prefixes"`
	MaxPrefixes int            `toml:"max-prefixes" json:"max_prefixes"`
}

// BFD configures single-hop BFD for one peer.
type BFD struct {
	Enabled    bool     `toml:"enabled" json:"enabled"`
	MinRx      Duration `toml:"min-rx" json:"min_rx"`
	MinTx      Duration `toml:"min-tx" json:"min_tx"`
	Multiplier int      `toml:"multiplier" json:"multiplier"`
}

// IPAM configures the address pools and this node's pod prefixes.
type IPAM struct {
	PodPrefixes []netip.Prefix `toml:"pod-prefixes" json:"pod_prefixes"`
	Pools       []Pool         `toml:"pools" json:"pools"`
}

// Pool is a named address pool.
type Pool struct {
	Name     string         `toml:"name" json:"name"`
	Kind     string         `toml:"kind" json:"kind"`
	Prefixes []netip.Prefix `toml:"prefixes" json:"prefixes"`
}

// LB holds load-balancer wide settings.
type LB struct {
	// MaglevTableSize caps the size of each VIP's Maglev table (a
	// prime); a table has at least about 100 slots per backend below it.
	MaglevTableSize int `toml:"maglev-table-size" json:"maglev_table_size"`
	// MaglevSlotsPerBackend is the least number of slots per backend a
	// Maglev table gets below MaglevTableSize (more: fewer flows of the
	// other backends move when one leaves, at the cost of memory).
	MaglevSlotsPerBackend int `toml:"maglev-slots-per-backend" json:"maglev_slots_per_backend"`
	// MaxVIPs and MaxBackends size the data plane's id spaces: services
	// and distinct backend addresses (sized at load: restart).
	MaxVIPs       int  `toml:"max-vips" json:"max_vips"`
	MaxBackends   int  `toml:"max-backends" json:"max_backends"`
	ConntrackSize int  `toml:"conntrack-size" json:"conntrack_size"`
	ICMPTooBig    bool `toml:"icmp-too-big" json:"icmp_too_big"`
	// FloodThreshold is the rate of new flows per second on one CPU above
	// which the data plane counts the excess as a flood (ct_flood); 0: off.
	FloodThreshold int `toml:"flood-threshold" json:"flood_threshold"`
	// EncapSourcePrefix is the outer IPv6 source of encapsulated packets;
	// its host bits vary with the flow. Unset: the node's IPv6 underlay.
	EncapSourcePrefix netip.Prefix `toml:"encap-source-prefix" json:"encap_source_prefix,omitzero"`
	// EncapSourcePrefix4 is the outer IPv4 source of IPv4-in-IPv4 packets
	// (IPv4 backends); its host bits vary with the flow. Unset: the node's
	// IPv4 underlay.
	EncapSourcePrefix4 netip.Prefix `toml:"encap-source-prefix4" json:"encap_source_prefix4,omitzero"`
}

// Service is one load-balanced VIP.
type Service struct {
	Name string `toml:"name" json:"name"`
	// VIP is the service address. Absent, aird allocates one from a pool
	// of kind "service" (VIPPool, or the first with a free address) and
	// keeps it in its state directory, keyed by the service name.
	VIP     netip.Addr `toml:"vip" json:"vip"`
	VIPPool string     `toml:"vip-pool" json:"vip_pool,omitempty"`
	// VIPAllocated is set by the daemon when VIP came from a pool; it is
	// not a key of the file.
	VIPAllocated bool           `toml:"-" json:"vip_allocated,omitempty"`
	Port         int            `toml:"port" json:"port"`
	Protocol     string         `toml:"protocol" json:"protocol"`
	AllowSources []netip.Prefix `toml:"allow-sources" json:"allow_sources"`
	Communities  []string       `toml:"communities" json:"communities"`
	Backends     []Backend      `toml:"backends" json:"backends"`
	HealthCheck  HealthCheck    `toml:"health-check" json:"health_check"`
}

// Backend is one real server behind a VIP.
type Backend struct {
	Address netip.Addr `toml:"address" json:"address"`
	Weight  int        `toml:"weight" json:"weight"`
}

// HealthCheck configures how a service's backends are probed.
type HealthCheck struct {
	Type         string      `toml:"type" json:"type"`
	Port         int         `toml:"port" json:"port"`
	Path         string      `toml:"path" json:"path"`
	ExpectStatus StatusRange `toml:"expect-status" json:"expect_status"`
	Interval     Duration    `toml:"interval" json:"interval"`
	Timeout      Duration    `toml:"timeout" json:"timeout"`
	Rise         int         `toml:"rise" json:"rise"`
	Fall         int         `toml:"fall" json:"fall"`
	// Via is "tunnel" (probe the VIP through the encapsulated path data
	// packets take, so a broken tunnel counts as unhealthy) or "direct"
	// (probe the backend's own address).
	Via string `toml:"via" json:"via"`
}

// API configures the local control API.
type API struct {
	Socket      string `toml:"socket" json:"socket"`
	SocketMode  int    `toml:"socket-mode" json:"socket_mode"`
	SocketGroup string `toml:"socket-group" json:"socket_group"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string `toml:"listen" json:"listen"`
	Path   string `toml:"path" json:"path"`
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level" json:"level"`
	Format string `toml:"format" json:"format"`
}

// decodeString reads a backend written as its address alone
// (backends = ["fd00::1", "fd00::2"]): weight 100. The compact form keeps
// a file of many services small and quick to read.
func (b *Backend) decodeString(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return err
	}
	b.Address = a
	return nil
}
