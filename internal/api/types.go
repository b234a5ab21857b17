package api

import (
	"net/netip"
	"time"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/version"
)

// Daemon states reported in Status.State.
const (
	StateStarting  = "starting"
	StateRunning   = "running"
	StateReloading = "reloading"
	StateStopping  = "stopping"
)

// Status is the answer to GET /v1/status.
type Status struct {
	Node       string        `json:"node"`
	Version    version.Info  `json:"version"`
	State      string        `json:"state"`
	PID        int           `json:"pid"`
	StartedAt  time.Time     `json:"started_at"`
	Config     ConfigStatus  `json:"config"`
	LastReload *ReloadResult `json:"last_reload,omitempty"`
	LogLevel   string        `json:"log_level"`
	BGPDrained bool          `json:"bgp_drained,omitempty"`
	// PodPrefixConflicts are pod prefixes another BGP speaker also
	// announces; aird does not advertise them while the conflict lasts.
	PodPrefixConflicts []PodPrefixConflict `json:"pod_prefix_conflicts,omitempty"`
	Datapath           Datapath            `json:"datapath"`
	// Endpoints counts the node's endpoints by state (ready, missing).
	Endpoints map[string]int `json:"endpoints,omitempty"`
}

// ConfigStatus describes the running configuration.
type ConfigStatus struct {
	File       string    `json:"file"`
	Generation int       `json:"generation"`
	Digest     string    `json:"digest"`
	LoadedAt   time.Time `json:"loaded_at"`
}

// ReloadResult is the outcome of one reload; the answer to POST /v1/reload.
type ReloadResult struct {
	Time       time.Time       `json:"time"`
	OK         bool            `json:"ok"`
	Generation int             `json:"generation"`
	Changed    []string        `json:"changed,omitempty"`
	Error      string          `json:"error,omitempty"`
	Errors     []*config.Error `json:"errors,omitempty"`
}

// Datapath reports the XDP pipeline.
type Datapath struct {
	PinPath string             `json:"pin_path"`
	Uplinks []Uplink           `json:"uplinks"`
	Packets map[string]Counter `json:"packets"`
	Error   string             `json:"error,omitempty"`
}

// Uplink is one interface with the pipeline attached.
type Uplink struct {
	Name      string `json:"name"`
	Ifindex   int    `json:"ifindex"`
	Mode      string `json:"mode"`
	Adopted   bool   `json:"adopted"`
	ProgramID uint32 `json:"program_id"`
	// FlowAffinity is "one-cpu" or "any-cpu" (docs/configuration.md,
	// [[datapath.uplink]]); FlowAffinityFrom says why.
	FlowAffinity     string `json:"flow_affinity"`
	FlowAffinityFrom string `json:"flow_affinity_from"`
}

// Counter is a packet and byte count.
type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// LogLevel is the body of PUT /v1/log/level and its answer.
type LogLevel struct {
	Level string `json:"level"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error  string          `json:"error"`
	Errors []*config.Error `json:"errors,omitempty"`
}

// PodPrefixConflict is a pod prefix of this node that a route learned over
// BGP (equal to it or inside it) also claims.
type PodPrefixConflict struct {
	PodPrefix   netip.Prefix `json:"pod_prefix"`
	Route       netip.Prefix `json:"route"`
	Peer        string       `json:"peer,omitempty"`
	PeerAddress netip.Addr   `json:"peer_address,omitzero"`
}
