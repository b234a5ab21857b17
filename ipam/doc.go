// Package ipam will own address management: the named pools of pod, VM and
// service addresses, this node's pod prefixes, and allocations to local
// endpoints (veth and tap) that the eBPF router then routes.
//
// The configuration schema for it ([ipam], [[ipam.pools]]) is already
// defined and validated by internal/config.
package ipam
