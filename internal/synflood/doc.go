// Package synflood is a bounded generator of spoofed TCP SYN (or bare ACK)
// frames, for
// the flood tests and benchmarks of the XDP load balancer (integration/,
// bench/): it writes complete Ethernet/IPv6 or Ethernet/IPv4 frames with
// random source addresses from a prefix and random source ports to one
// destination through a raw AF_PACKET socket on one interface, with the
// qdisc bypassed, and stops after Count frames or when its context ends.
//
// It sends only what its caller points it at (an interface of a network
// namespace the test created) and never more than Options.Count frames.
// xdp-trafficgen does the same job on kernels that support it; this one
// works on any kernel with AF_PACKET.
package synflood
