package ipam

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkPick measures finding the next free address in a /64 with the
// first N addresses in use and the cursor after them, the state after N
// allocations: the cost does not grow with N (compare used=0 with the
// others in the same run).
func BenchmarkPick(b *testing.B) {
	p := Pool{Name: "pods", Kind: KindPod, Prefixes: pfx("fd00:10:0:1::/64")}
	for _, used := range []int{0, 1000, 100000} {
		b.Run(fmt.Sprintf("used=%d", used), func(b *testing.B) {
			a := &Allocator{pools: []Pool{p}, byKey: map[string]*Allocation{}, byAddr: map[netip.Addr]*Allocation{},
				cursors: map[string]netip.Addr{}}
			addr := p.Prefixes[0].Addr()
			for i := range used {
				addr = addr.Next()
				a.index(&Allocation{Owner: fmt.Sprint(i), Family: IPv6, Addr: addr})
			}
			if used > 0 {
				a.cursors[cursorKey("pods", IPv6)] = addr
			}
			b.ResetTimer()
			for b.Loop() {
				got, ok := a.pick(p, IPv6, func(x netip.Addr) bool { return a.byAddr[x] != nil })
				if !ok || a.byAddr[got] != nil {
					b.Fatalf("pick = %s %v", got, ok)
				}
			}
		})
	}
}
