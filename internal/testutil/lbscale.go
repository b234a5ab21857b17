package testutil

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// LBScale describes a load-balancer configuration at scale: VIPs IPv6
// services (VIP fd00:300::<i+1>, TCP port 80, no health checks), each with
// PerVIP backends drawn without repetition from a pool of Pool addresses
// fd00:b::<j+1>, the same for a given Seed. The scale test and the daemon
// benchmark (bench/) use it.
type LBScale struct {
	VIPs, PerVIP, Pool int
	Seed               uint64
}

// VIPPool is the service pool the VIPs are in.
const VIPPool = "fd00:300::/112"

// VIP returns the VIP of service i.
func (s LBScale) VIP(i int) netip.Addr {
	a := netip.MustParseAddr("fd00:300::").As16()
	a[14], a[15] = byte((i+1)>>8), byte(i+1)
	return netip.AddrFrom16(a)
}

// Backends returns the backends of every service.
func (s LBScale) Backends() [][]netip.Addr {
	r := rand.New(rand.NewPCG(s.Seed, 0x6c627363616c65))
	out := make([][]netip.Addr, s.VIPs)
	for i := range out {
		picks := r.Perm(s.Pool)[:s.PerVIP]
		out[i] = make([]netip.Addr, s.PerVIP)
		for j, p := range picks {
			out[i][j] = netip.MustParseAddr(fmt.Sprintf("fd00:b::%x", p+1))
		}
	}
	return out
}

// TOML returns the [[ipam.pools]] and [[services]] of the configuration;
// weight(i, j) is backend j's weight in service i (nil: the default). A
// backend of the default weight is written as its address alone.
func (s LBScale) TOML(weight func(i, j int) int) string {
	return s.PoolTOML() + s.ServicesTOML(weight, 0, s.VIPs)
}

// PoolTOML returns the [[ipam.pools]] the VIPs are in.
func (s LBScale) PoolTOML() string {
	return fmt.Sprintf("[[ipam.pools]]\nname = \"services\"\nkind = \"service\"\nprefixes = [%q]\n", VIPPool)
}

// ServicesTOML returns the [[services]] from..to-1, as TOML writes them.
func (s LBScale) ServicesTOML(weight func(i, j int) int, from, to int) string {
	var b strings.Builder
	all := s.Backends()
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "\n[[services]]\nname = \"s%d\"\nvip = %q\nport = 80\nhealth-check = { type = \"none\" }\nbackends = [", i, s.VIP(i))
		for j, a := range all[i] {
			if j > 0 {
				b.WriteString(", ")
			}
			if w := 100; weight != nil && weight(i, j) != w {
				fmt.Fprintf(&b, "{ address = %q, weight = %d }", a, weight(i, j))
			} else {
				fmt.Fprintf(&b, "%q", a)
			}
		}
		b.WriteString("]\n")
	}
	return b.String()
}
