package api

import (
	"errors"
	"net/netip"
	"time"
)

// ErrNotConfigured is returned by a plane that the configuration does not
// enable (for example BGP without a [bgp] section); the API answers 404.
var ErrNotConfigured = errors.New("not configured")

// BGPNeighbor is one peer in GET /v1/bgp/neighbors.
type BGPNeighbor struct {
	Name        string     `json:"name"`
	Address     netip.Addr `json:"address,omitzero"`
	Interface   string     `json:"interface,omitempty"`
	BFD         string     `json:"bfd,omitempty"`
	PeerASN     uint32     `json:"peer_asn"`
	LocalASN    uint32     `json:"local_asn"`
	State       string     `json:"state"`
	Since       time.Time  `json:"since,omitzero"`
	UptimeSec   float64    `json:"uptime_seconds"`
	Received    int        `json:"received"`
	Accepted    int        `json:"accepted"`
	Advertised  int        `json:"advertised"`
	MaxPrefixes int        `json:"max_prefixes"`
	Families    []string   `json:"families"`
	// FamilyStatus says per configured family whether our routes go to
	// the peer (state sent, not-negotiated, not-sendable, down).
	FamilyStatus    []BGPFamilyStatus `json:"family_status,omitempty"`
	ExtendedNextHop bool              `json:"extended_nexthop"`
	// StateSince is the last change between established and not.
	StateSince time.Time `json:"state_since,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	// The last NOTIFICATIONs sent to and received from the peer.
	LastNotificationSent     *BGPNotification `json:"last_notification_sent,omitempty"`
	LastNotificationReceived *BGPNotification `json:"last_notification_received,omitempty"`
	// Hint suggests what to check for a session that does not come up.
	Hint string `json:"hint,omitempty"`
}

// BGPNotification is a decoded BGP NOTIFICATION.
type BGPNotification struct {
	Code    uint8     `json:"code"`
	Subcode uint8     `json:"subcode"`
	Text    string    `json:"text"` // "Cease / Maximum Number of Prefixes Reached"
	At      time.Time `json:"at"`
}

// BGPFamilyStatus is one address family of a BGPNeighbor.
type BGPFamilyStatus struct {
	Family  string     `json:"family"`
	State   string     `json:"state"`
	NextHop netip.Addr `json:"next_hop,omitzero"`
	Reason  string     `json:"reason,omitempty"`
}

// BGPRouteQuery selects routes for GET /v1/bgp/routes.
type BGPRouteQuery struct {
	Advertised bool   // our own routes; otherwise learned ones
	Neighbor   string // a peer name or address; "" = all
	Family     string // "ipv6", "ipv4" or ""
	Prefix     netip.Prefix
}

// BGPRoute is one path in GET /v1/bgp/routes.
type BGPRoute struct {
	Prefix           netip.Prefix `json:"prefix"`
	Peer             string       `json:"peer,omitempty"`
	PeerAddress      netip.Addr   `json:"peer_address,omitzero"`
	NextHop          netip.Addr   `json:"next_hop,omitzero"`
	ASPath           []uint32     `json:"as_path"`
	Communities      []string     `json:"communities,omitempty"`
	LargeCommunities []string     `json:"large_communities,omitempty"`
	Best             bool         `json:"best"`
	Stale            bool         `json:"stale"`
	Installed        bool         `json:"installed"`
	AgeSec           float64      `json:"age_seconds"`
}

// BGPDrain is the answer to POST /v1/bgp/drain and /v1/bgp/undrain.
type BGPDrain struct {
	Drained bool   `json:"drained"`
	Wait    string `json:"wait,omitempty"` // how long until the withdraw
}

// BGPBackend is implemented by a daemon that runs the BGP speaker.
type BGPBackend interface {
	BGPNeighbors() ([]BGPNeighbor, error)
	BGPRoutes(q BGPRouteQuery) ([]BGPRoute, error)
	BGPDrain(drain bool) (BGPDrain, error)
}

// LBDrain is the body of POST /v1/lb/drain.
type LBDrain struct {
	Service string     `json:"service"`
	Backend netip.Addr `json:"backend"`
	Drained bool       `json:"drained"`
}

// LBStats is the answer to GET /v1/lb/stats: data-plane event and drop
// counters and the traffic of every programmed service (LBServiceStats),
// summed over CPUs. With a selection (vip=, name=) only those services,
// with their backends' traffic, and no node-wide events and drops.
type LBStats struct {
	Events   map[string]uint64 `json:"events,omitempty"`
	Drops    map[string]uint64 `json:"drops,omitempty"`
	Services []LBServiceStats  `json:"services"`
}

// LBBackend is implemented by a daemon that runs the load balancer.
type LBBackend interface {
	LBServices(LBServiceQuery) (LBServiceList, error)
	LBDrain(LBDrain) error
	LBStats(LBServiceQuery) (LBStats, error)
}
