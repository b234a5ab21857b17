package router

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Kinds of endpoints.
const (
	KindContainer = "container" // a veth pair into a network namespace
	KindVM        = "vm"        // an existing tap device
)

// Endpoint states in Status.
const (
	StateReady   = "ready"
	StateMissing = "missing" // its link is gone (container or tap deleted)
)

// RouteProtocol stamps the kernel routes aird installs for endpoint
// addresses ("203 aird-endpoint" in /etc/iproute2/rt_protos.d).
const RouteProtocol = 203

// Gateways the endpoints route through: link-local, the same on every
// endpoint link.
var (
	GatewayIPv6 = netip.MustParseAddr("fe80::1")
	GatewayIPv4 = netip.MustParseAddr("169.254.1.1")
)

// Limits of requests.
const (
	MaxNameLen = 63
	MaxVIPs    = 64
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)

// Request asks for a new endpoint.
type Request struct {
	// Name identifies the endpoint: lower-case letters, digits, '.', '_'
	// and '-', at most MaxNameLen bytes.
	Name string `json:"name"`
	// Netns is the path of a container's network namespace
	// (/run/netns/NAME, /proc/PID/ns/net): a container endpoint.
	Netns string `json:"netns,omitempty"`
	// Ifname is the name of the link inside the container (default eth0).
	Ifname string `json:"ifname,omitempty"`
	// Tap names an existing tap device: a VM endpoint.
	Tap string `json:"tap,omitempty"`
	// MAC is the VM's MAC address, if known (taps only).
	MAC string `json:"mac,omitempty"`
	// Families are the address families to allocate ("ipv6", "ipv4");
	// empty means every family the endpoint's pools have.
	Families []string `json:"families,omitempty"`
	// VIPs the endpoint serves with direct server return.
	VIPs []netip.Addr `json:"vips,omitempty"`
}

// Kind returns the endpoint kind the request asks for.
func (r Request) Kind() string {
	if r.Tap != "" {
		return KindVM
	}
	return KindContainer
}

func (r *Request) validate() error {
	var errs []error
	if len(r.Name) > MaxNameLen || !nameRE.MatchString(r.Name) {
		errs = append(errs, fmt.Errorf("name %q: want 1 to %d lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit", r.Name, MaxNameLen))
	}
	switch {
	case r.Netns == "" && r.Tap == "":
		errs = append(errs, errors.New("give --netns PATH (a container) or --tap IFNAME (a VM)"))
	case r.Netns != "" && r.Tap != "":
		errs = append(errs, errors.New("--netns and --tap exclude each other"))
	}
	if r.Netns != "" && !strings.HasPrefix(r.Netns, "/") {
		errs = append(errs, fmt.Errorf("netns %q: want an absolute path", r.Netns))
	}
	if r.Ifname == "" && r.Netns != "" {
		r.Ifname = "eth0"
	}
	for _, n := range []string{r.Ifname, r.Tap} {
		if n != "" && (len(n) > 15 || strings.ContainsAny(n, "/: \t\n\x00") || n == "." || n == "..") {
			errs = append(errs, fmt.Errorf("interface name %q: 1 to 15 bytes, no '/', ':' or spaces", n))
		}
	}
	if r.MAC != "" {
		if r.Tap == "" {
			errs = append(errs, errors.New("--mac is for VM endpoints (--tap)"))
		} else if m, err := net.ParseMAC(r.MAC); err != nil || len(m) != 6 {
			errs = append(errs, fmt.Errorf("mac %q: want an Ethernet address", r.MAC))
		}
	}
	for _, f := range r.Families {
		if f != "ipv6" && f != "ipv4" {
			errs = append(errs, fmt.Errorf("family %q: want ipv6 or ipv4", f))
		}
	}
	if len(r.VIPs) > MaxVIPs {
		errs = append(errs, fmt.Errorf("%d vips: at most %d", len(r.VIPs), MaxVIPs))
	}
	for _, v := range r.VIPs {
		if !v.IsValid() || v.IsUnspecified() || v.IsMulticast() || v.IsLinkLocalUnicast() || v.IsLoopback() {
			errs = append(errs, fmt.Errorf("vip %s: want a unicast address", v))
		}
	}
	slices.SortFunc(r.VIPs, func(a, b netip.Addr) int { return a.Compare(b) })
	r.VIPs = slices.Compact(r.VIPs)
	return errors.Join(errs...)
}

// Endpoint is the record kept for an endpoint.
type Endpoint struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	ID     uint32 `json:"id"`
	HostIf string `json:"host_if"`
	Netns  string `json:"netns,omitempty"`
	Ifname string `json:"ifname,omitempty"`
	Tap    string `json:"tap,omitempty"`
	MAC    string `json:"mac,omitempty"` // the endpoint's; "" while unknown (VMs)
	// MACLearned: the MAC came from the kernel's neighbour table (a VM
	// that may change it), not from aird or the request.
	MACLearned bool         `json:"mac_learned,omitempty"`
	MTU        int          `json:"mtu"`
	Addrs      []netip.Addr `json:"addresses"`
	VIPs       []netip.Addr `json:"vips,omitempty"`
	Created    time.Time    `json:"created"`
}

// owner is the endpoint's owner key in IPAM.
func owner(name string) string { return "endpoint/" + name }

// Counters are an endpoint's traffic counters in the data plane.
type Counters struct {
	RxPackets   uint64 `json:"rx_packets"`
	RxBytes     uint64 `json:"rx_bytes"`
	TxPackets   uint64 `json:"tx_packets"`
	TxBytes     uint64 `json:"tx_bytes"`
	DropSpoofed uint64 `json:"drop_spoofed"`
	DropDecap   uint64 `json:"drop_decap"`
}

// Status is an endpoint as shown by List.
type Status struct {
	Endpoint
	State    string   `json:"state"`
	Counters Counters `json:"counters"`
}
