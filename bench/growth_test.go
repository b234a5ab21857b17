package bench

import (
	"fmt"
	"slices"
	"testing"
)

// BenchmarkVIPGrowth measures the cost growth with the number of
// configured VIPs the way the target is stated: one data plane per VIP
// count (1, 100, 1,000, 10,000, and 1 again: the control; traffic to one
// VIP, the middle one), all in one namespace, measured interleaved -
// every iteration runs the floor and each data plane once, in a rotating
// order - so that load on the machine hits every count alike instead of
// whichever ran during a busy second. Reported per count: x-floor
// (trimmed means), growth-% over 1 VIP (growth-%-control: the second
// 1-VIP data plane's, the noise) and in-set (the measured service found
// in its vip_sets set).
func BenchmarkVIPGrowth(b *testing.B) {
	b.Run("established", func(b *testing.B) { vipGrowth(b, false) })
	b.Run("new-flow", func(b *testing.B) { vipGrowth(b, true) })
}

func vipGrowth(b *testing.B, newFlow bool) {
	ns, ifindex := newBenchNS(b)
	// The last data plane is the first again, a second 1-VIP data plane
	// programmed the same way: how far two identical data planes differ
	// in a run (growth-%-control) is what the counts' growth is read
	// against.
	counts := append(slices.Clone(vipCounts), vipCounts[0])
	envs := make([]*env, len(counts))
	pkts := make([][]byte, len(counts))
	for i, nv := range counts {
		envs[i] = newEnvIn(b, ns, ifindex, nv)
		pkts[i] = template(b, newFlow)
		setFlow(pkts[i], 0, nv/2)
	}
	floor := envs[0].floor.FloorXdp
	floorPkt := template(b, false)
	results := make([]*result, len(envs))
	for i := range results {
		results[i] = &result{}
	}
	inNetns(b, ns, func() {
		if !newFlow { // track the flow in every data plane first
			for i, e := range envs {
				track(b, e, 0, counts[i]/2)
			}
		}
		for _, e := range envs {
			e.resetCTIf(b, newFlow)
		}
		b.ResetTimer()
		for it := 0; it < b.N; it++ {
			for k := range envs {
				i := (it + k) % len(envs)
				e := envs[i]
				if newFlow {
					if e.inserted >= e.ctShare/4 {
						b.StopTimer()
						e.resetCT(b)
						b.StartTimer()
					}
					setFlow(pkts[i], uint32(it+1), counts[i]/2)
					e.inserted++
				}
				fl := runOnce(b, floor, floorPkt, ifindex, xdpTx)
				results[i].add(runOnce(b, e.prog, pkts[i], ifindex, xdpTx), fl)
			}
		}
	})
	var base float64
	for i, r := range results {
		_, lb := r.lb.stats()
		_, fl := r.floor.stats()
		x := lb / fl
		name := fmt.Sprintf("vips=%d", counts[i])
		if i == len(counts)-1 {
			name = "control"
		}
		if i == 0 {
			base = x
		}
		b.ReportMetric(x, "x-floor-"+name)
		if i > 0 {
			b.ReportMetric((x/base-1)*100, "growth-%-"+name)
		}
		// Where the measured service sits: 1 in a way of its vip_sets
		// set, 0 looked up in vips (its set full).
		in, err := serviceInSet(envs[i].lbMaps, vipAddr(counts[i]/2), 6, 443)
		must(b, err)
		b.ReportMetric(map[bool]float64{true: 1}[in], "in-set-"+name)
	}
	b.ReportMetric(0, "ns/op")
}

// resetCTIf empties conntrack when new flows are measured.
func (e *env) resetCTIf(b testing.TB, cond bool) {
	if cond {
		e.resetCT(b)
	}
}
