// Package lb will own the XDP L4 load balancer's control plane: services
// and backends from the configuration, weighted Maglev tables, health
// checks that travel the encapsulated data path, and the signal to the BGP
// layer when a VIP loses its last healthy backend. Its data-plane stage
// lives in bpf/ as part of the single XDP pipeline.
//
// The configuration schema for it ([lb], [[services]]) is already defined
// and validated by internal/config.
package lb
