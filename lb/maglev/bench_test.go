package maglev

import (
	"runtime"
	"testing"
)

// BenchmarkFloor is the baseline the Build numbers are read against:
// writing every slot of a 65537-entry table once, the least any build
// must do.
func BenchmarkFloor(b *testing.B) {
	table := make([]int32, bigSize)
	b.ReportAllocs()
	for b.Loop() {
		for i := range table {
			table[i] = -1
		}
	}
	runtime.KeepAlive(table)
}

func benchCases() []struct {
	name string
	bs   []Backend
	size uint32
} {
	return []struct {
		name string
		bs   []Backend
		size uint32
	}{
		{"n=100/size=12809", equalBackends(100), 12809}, // the daemon's default for 65-128 backends
		{"n=100/size=65537", equalBackends(100), bigSize},
		{"n=1000/size=65537", equalBackends(1000), bigSize},
		{"n=100/size=655373", equalBackends(100), 655373},
		{"n=1000/size=655373", equalBackends(1000), 655373},
		{"n=100/weighted/size=65537", randomBackends(100, 100, 1), bigSize},
		{"n=1000/weighted/size=65537", randomBackends(1000, 100, 1), bigSize},
		{"n=1000/weighted/size=655373", randomBackends(1000, 100, 1), 655373},
	}
}

// BenchmarkBuild measures Build, which allocates its table and scratch.
func BenchmarkBuild(b *testing.B) {
	for _, tc := range benchCases() {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(tc.bs, tc.size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuilder measures a Builder rebuilding into the same table, as
// a control plane does when it recomputes a service's table.
func BenchmarkBuilder(b *testing.B) {
	for _, tc := range benchCases() {
		b.Run(tc.name, func(b *testing.B) {
			var bld Builder
			dst, err := bld.Build(nil, tc.bs, tc.size)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if dst, err = bld.Build(dst, tc.bs, tc.size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
