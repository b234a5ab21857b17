// Package lb owns the XDP L4 load balancer's control plane: services and
// backends from the configuration, their health, the set of VIPs that can
// serve (the signal the BGP speaker advertises from), weighted Maglev tables
// (lb/maglev) and, through internal/datapath, the BPF maps of the lb stage.
//
// A VIP is serving while at least one of its services has a backend that is
// healthy and has a weight above zero (a drained backend keeps its
// established flows but takes no new ones). When the last one goes, the VIP
// leaves the serving set and the BGP layer withdraws it; it returns as soon
// as a backend recovers.
package lb
