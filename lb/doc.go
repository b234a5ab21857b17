// Package lb owns the XDP L4 load balancer's control plane: services and
// backends (its own Service, Backend and HealthCheck types; the daemon
// translates the configuration), their health, the set of VIPs that can
// serve (the signal the BGP speaker advertises from), weighted Maglev
// tables (lb/maglev) and, through a Dataplane (Programmer, the one writer
// of the lb stage's maps), the data plane.
//
// A VIP is serving while at least one of its services has a backend that is
// healthy and has a weight above zero (a drained backend keeps its
// established flows but takes no new ones). When the last one goes, the VIP
// leaves the serving set and the BGP layer withdraws it; it returns as soon
// as a backend recovers.
//
// The Manager owns the id allocator (IDs): one vip id per service key
// (VIP, protocol, port), one backend id per backend address. It hands the
// data plane only what changed - the services a reload adds, changes or
// removes, the services a health event touches - and each change is all or
// nothing. Apply looks at every service of a configuration; Update at the
// services a Delta names, so that a reload of one service among thousands
// costs in proportion to that one. Each service's Maglev table is sized from its backend count
// (TableSize) and shared with the services whose weighted backends are the
// same. After a restart, the tables of the earlier process stay as they
// were until the health of every backend of their service is decided again
// (its first successful probe, or `fall` failed ones);
// drains are kept in a file in the state directory.
package lb
