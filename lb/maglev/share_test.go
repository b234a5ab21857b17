package maglev

import (
	"fmt"
	"math"
	"testing"
)

// TestEqualShares checks that with equal weights every backend's share of
// the slots is within 1% of 1/N: |share·N − 1| ≤ 0.01. The algorithm
// guarantees more, ⌊size/N⌋ or ⌈size/N⌉ slots each, which is asserted too.
func TestEqualShares(t *testing.T) {
	for _, n := range []int{2, 3, 10, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			bs := equalBackends(n)
			c := counts(mustBuild(t, bs, bigSize), n)
			lo, hi := bigSize/n, (bigSize+n-1)/n
			worst := 0.0
			for i, got := range c {
				if got < lo || got > hi {
					t.Errorf("backend %d has %d slots, want %d or %d", i, got, lo, hi)
				}
				dev := math.Abs(float64(got)*float64(n)/bigSize - 1)
				worst = max(worst, dev)
				if dev > 0.01 {
					t.Errorf("backend %d: |share·N − 1| = %.4f > 0.01", i, dev)
				}
			}
			t.Logf("N=%d: max |share·N − 1| = %.4f%%", n, 100*worst)
		})
	}
}

// TestWeightedShares checks that every backend gets its share size·w/W of
// the slots to within one slot (strictly), W being the total weight, and
// so within 1% (relative) for every backend due 100 slots or more.
func TestWeightedShares(t *testing.T) {
	heavy := make([]Backend, 1000)
	for i := range heavy {
		heavy[i] = Backend{Key: addrKey(i), Weight: 1}
	}
	heavy[0].Weight = 65535
	cycled := make([]Backend, 1000)
	for i := range cycled {
		cycled[i] = Backend{Key: addrKey(i), Weight: uint32(1 + i%100)}
	}
	for _, tc := range []struct {
		name string
		bs   []Backend
		size uint32
	}{
		{"1,2,3,4", []Backend{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}, bigSize},
		{"1..10", func() []Backend {
			bs := make([]Backend, 10)
			for i := range bs {
				bs[i] = Backend{Key: addrKey(i), Weight: uint32(i + 1)}
			}
			return bs
		}(), bigSize},
		{"1000 cycling 1..100", cycled, bigSize},
		{"100 random 1..65535", randomBackends(100, 65535, 1), bigSize},
		{"1000 random 1..100 at 655373", randomBackends(1000, 100, 2), 655373},
		{"65535 and 999×1", heavy, bigSize},
		{"tiny 5 random at 7", randomBackends(5, 10, 3), 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := counts(mustBuild(t, tc.bs, tc.size), len(tc.bs))
			var total float64
			for _, b := range tc.bs {
				total += float64(b.Weight)
			}
			worstSlots, worstRel := 0.0, 0.0
			for i, got := range c {
				ideal := float64(tc.size) * float64(tc.bs[i].Weight) / total
				d := math.Abs(float64(got) - ideal)
				worstSlots = max(worstSlots, d)
				if ideal >= 1 {
					worstRel = max(worstRel, d/ideal)
				}
				if d >= 1 {
					t.Errorf("backend %d weight %d: %d slots, ideal %.3f", i, tc.bs[i].Weight, got, ideal)
				}
				if ideal >= 100 && d/ideal > 0.01 {
					t.Errorf("backend %d weight %d: share off by %.3f%%", i, tc.bs[i].Weight, 100*d/ideal)
				}
			}
			t.Logf("%s: max |slots − ideal| = %.3f, max relative (ideal ≥ 1) = %.4f%%", tc.name, worstSlots, 100*worstRel)
		})
	}
}
