package config

import "time"

// Defaults applied before the file is decoded; documented key by key in
// docs/configuration.md.
const (
	DefaultConfigPath      = "/etc/aird/aird.toml"
	DefaultSocket          = "/run/aird/aird.sock"
	DefaultPinPath         = "/sys/fs/bpf/aird"
	DefaultMaglevTableSize = 65537
	// DefaultMaglevSlotsPerBackend is lb.maglev-slots-per-backend's
	// default (lb.DefaultSlotsPerBackend).
	DefaultMaglevSlotsPerBackend = 100
	DefaultLBMaxVIPs             = 65536
	DefaultLBMaxBackends         = 65536
	// DefaultFloodThreshold is lb.flood-threshold's default: new flows per
	// second on one CPU (a core balances a few million).
	DefaultFloodThreshold = 100_000
)

// Default returns a configuration with every default filled in and nothing
// configured: no uplinks, no BGP, no services.
func Default() *Config {
	return &Config{
		Datapath: Datapath{PinPath: DefaultPinPath, XDPMode: "auto", Forwarding: "enable"},
		LB: LB{MaglevTableSize: DefaultMaglevTableSize, MaglevSlotsPerBackend: DefaultMaglevSlotsPerBackend, MaxVIPs: DefaultLBMaxVIPs, MaxBackends: DefaultLBMaxBackends,
			ConntrackSize: 1 << 20, ICMPTooBig: true, FloodThreshold: DefaultFloodThreshold},
		API:     API{Socket: DefaultSocket, SocketMode: 0o660},
		Metrics: Metrics{Path: "/metrics"},
		Log:     Log{Level: "info", Format: "text"},
	}
}

func (b *BGP) setDefaults() {
	*b = BGP{
		ListenPort:      179,
		HoldTime:        Duration(9 * time.Second),
		KeepaliveTime:   Duration(3 * time.Second),
		ConnectRetry:    Duration(5 * time.Second),
		Advertise:       Advertise{PodPrefixes: true, ServiceVIPs: true},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: Duration(120 * time.Second)},
		Drain:           Drain{Wait: Duration(30 * time.Second)},
	}
}

func (p *Peer) setDefaults() {
	*p = Peer{
		Families: []string{"ipv6", "ipv4"},
		Import:   Import{MaxPrefixes: 1000},
		BFD: BFD{
			MinRx:      Duration(300 * time.Millisecond),
			MinTx:      Duration(300 * time.Millisecond),
			Multiplier: 3,
		},
	}
}

func (s *Service) setDefaults() {
	*s = Service{
		Protocol: "tcp",
		HealthCheck: HealthCheck{
			Type:         "tcp",
			Path:         "/",
			ExpectStatus: StatusRange{Min: 200, Max: 399},
			Interval:     Duration(5 * time.Second),
			Timeout:      Duration(2 * time.Second),
			Rise:         2,
			Fall:         3,
			Via:          "tunnel",
		},
	}
}

func (b *Backend) setDefaults() { *b = Backend{Weight: 100} }

func (u *UplinkOptions) setDefaults() { *u = UplinkOptions{FlowAffinity: FlowAffinityAuto} }

// The values of datapath.uplink's flow-affinity.
const (
	FlowAffinityAuto   = "auto"
	FlowAffinityOneCPU = "one-cpu"
	FlowAffinityAnyCPU = "any-cpu"
)

// finish fills defaults that depend on other keys.
func (c *Config) finish(hostname string) {
	if c.Node.Name == "" {
		c.Node.Name = hostname
	}
	if !c.Node.RouterID.IsValid() {
		for _, a := range c.Node.Underlay {
			if a.Is4() {
				c.Node.RouterID = a
				break
			}
		}
	}
	if c.BGP != nil && !c.BGP.RouterID.IsValid() {
		c.BGP.RouterID = c.Node.RouterID
	}
	finishServices(c.Services)
}

// finishServices fills the defaults of services that depend on other keys
// of the service.
func finishServices(svcs []Service) {
	for i := range svcs {
		hc := &svcs[i].HealthCheck
		if port := svcs[i].Port; hc.Port == 0 && port > 0 && port <= 65535 {
			hc.Port = port
		}
	}
}
