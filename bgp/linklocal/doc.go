// Package linklocal finds the BGP peer on an interface for unnumbered
// peering: the switch's IPv6 link-local address, learned with neighbour
// discovery.
//
// On the interface it joins the all-routers group, sends a Router
// Solicitation at start (so a switch that answers RS replies at once) and
// its own Router Advertisements with router lifetime 0 every interval:
// FRR's `neighbor IFACE interface` learns its peer only from received RAs,
// and a lifetime of 0 says "not a default router", so hosts on the link do
// not route through the node. Every RA, NS or NA from another link-local
// address names a candidate peer; an RA wins over NS/NA. The current peer is
// reported on a channel whenever it changes, and reported as gone (the zero
// address) when the link goes down or the peer falls silent for the expiry
// time (never, with a negative expiry). Link state changes are followed
// with rtnetlink events as they happen: a link going down loses the peer at
// once, a link coming up sends an RS at once and three RAs a second apart
// (the interval apart when it is shorter), the first a second after the
// link came up: an RA in the moment the link comes up races the switch's
// own handling of it, which FRR (zebra and bgpd before 10.0) can lose for
// good (see settle).
package linklocal
