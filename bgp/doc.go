// Package bgp will own the embedded BGP speaker (GoBGP v4, in process; the
// only package that imports it): peers by address and by interface
// (unnumbered, found with NDP), advertisement of pod prefixes and healthy
// VIPs, deny-by-default import into the kernel FIB, BFD, graceful restart
// and the maintenance drain.
//
// The configuration schema for it ([bgp], [[bgp.peers]]) is already defined
// and validated by internal/config.
package bgp
