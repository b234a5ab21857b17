package lb

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/aird-net/aird/lb/maglev"
)

// disruption removes backend victim of n equal ones from a table of the
// size TableSize gives n and n-1 backends, and returns the fraction of
// the slots of the other backends whose owner changed, and the fraction
// of all slots that changed (ideal: 1/n).
func disruption(t *testing.T, n, victim int, limit uint32) (collateral, moved float64) {
	return disruptionSized(t, n, victim, Sizing{Limit: limit})
}

// disruptionSized is disruption with the table sizes z gives.
func disruptionSized(t *testing.T, n, victim int, z Sizing) (collateral, moved float64) {
	t.Helper()
	bs := make([]maglev.Backend, n)
	for i := range bs {
		bs[i] = maglev.Backend{Key: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String(), Weight: 100}
	}
	before, err := maglev.Build(bs, z.Size(n))
	if err != nil {
		t.Fatal(err)
	}
	after := slices.Delete(slices.Clone(bs), victim, victim+1)
	at, err := maglev.Build(after, z.Size(n-1))
	if err != nil {
		t.Fatal(err)
	}
	if len(at) != len(before) {
		return 1, 1 // another size: every slot is new
	}
	key := bs[victim].Key
	var others, otherMoved, all int
	for s := range before {
		kb, ka := bs[before[s]].Key, after[at[s]].Key
		if kb != ka {
			all++
		}
		if kb != key {
			others++
			if kb != ka {
				otherMoved++
			}
		}
	}
	return float64(otherMoved) / float64(others), float64(all) / float64(len(before))
}

// The table sizes TableSize picks keep Maglev's disruption small: when 1
// of n backends leaves (within a power of two, where the size stays), the
// others keep at least 96 % of their slots. Measured (-v) for n up to
// 1,000 at the default cap (n = 1,000 hits it: 65 slots per backend): 3.6
// % at n = 7, 2.2-2.4 % at 30 and 63, 1.5 % at 100, 0.6 % at 1,000 - so
// above about 40 backends more than 1.1/n of the others' flows move
// (1.5/n at 100, 6/n at 1,000): Maglev's collateral, which larger tables
// shrink only slowly (1.1/n at 100 backends takes 256 slots per backend).
func TestDisruptionAtChosenSizes(t *testing.T) {
	const bound = 0.04
	for _, n := range []int{4, 7, 10, 30, 63, 100, 127, 250, 500, 1000} {
		worstC, worstM := 0.0, 0.0
		for _, v := range []int{0, n / 3, n / 2, n - 1} {
			c, m := disruption(t, n, v, DefaultMaglevTableSize)
			worstC, worstM = max(worstC, c), max(worstM, m)
		}
		t.Logf("n=%4d size %6d: others' flows moved ≤ %.2f%% (%.2f/n), all moved ≤ %.2f%% (%.2f/n)",
			n, TableSize(n, DefaultMaglevTableSize), 100*worstC, worstC*float64(n), 100*worstM, worstM*float64(n))
		if worstC > bound {
			t.Errorf("n=%d: %.2f%% of the other backends' flows moved, more than %.1f%%", n, 100*worstC, 100*bound)
		}
	}
	// Crossing a power of two changes the size: every flow is re-spread.
	if c, _ := disruption(t, 65, 0, DefaultMaglevTableSize); c != 1 {
		t.Fatalf("65 -> 64 backends kept the table size")
	}
}

func TestTableSize(t *testing.T) {
	for _, c := range []struct {
		n     int
		limit uint32
		want  uint32
	}{{0, 65537, 101}, {1, 65537, 101}, {2, 65537, 211}, {3, 65537, 401}, {4, 65537, 401}, {100, 65537, 12809},
		{128, 65537, 12809}, {129, 65537, 25601}, {600, 65537, 65537}, {100, 1021, 1021}} {
		if got := TableSize(c.n, c.limit); got != c.want || !isPrime(got) {
			t.Errorf("TableSize(%d, %d) = %d, want %d", c.n, c.limit, got, c.want)
		}
	}
}

// lb.maglev-slots-per-backend trades memory for disruption: at 200 slots
// per backend (a 25,601-slot table for 65-128 backends) 1 of up to 100
// backends leaving moves at most 1.1/n of the others' flows, the bound
// the default 100 (12,809 slots) misses above about 40 backends. Measured
// (-v): 1.09/n at 100 backends. Beyond that, Maglev's collateral grows
// with n at any practical size (3.3/n at 1,000 backends even at 655
// slots each), so the bound is stated for up to 100.
func TestDisruptionSlotsPerBackend(t *testing.T) {
	z := Sizing{PerBackend: 200, Limit: DefaultMaglevTableSize}
	if got := z.Size(100); got != 25601 {
		t.Fatalf("200 slots per backend, 100 backends: size %d, want 25601", got)
	}
	for _, n := range []int{4, 10, 30, 63, 100} {
		worst := 0.0
		for _, v := range []int{0, n / 7, n / 3, n / 2, 2 * n / 3, n - 1} {
			c, _ := disruptionSized(t, n, v, z)
			worst = max(worst, c)
		}
		t.Logf("n=%3d size %6d: others' flows moved ≤ %.2f%% (%.2f/n)", n, z.Size(n), 100*worst, worst*float64(n))
		if worst > 1.1/float64(n) {
			t.Errorf("n=%d at 200 slots per backend: %.2f/n of the others' flows moved, more than 1.1/n", n, worst*float64(n))
		}
	}
	// The default misses the bound at 100 backends: the knob matters.
	// (docs/configuration.md says so; if Maglev's fill changes, update it).
	if c, _ := disruptionSized(t, 100, 50, Sizing{Limit: DefaultMaglevTableSize}); c <= 1.1/100 {
		t.Errorf("the default sizing moved only %.2f/n at 100 backends: the docs say it misses 1.1/n", c*100)
	}
}

func TestSizingPerBackend(t *testing.T) {
	for _, c := range []struct {
		z    Sizing
		n    int
		want uint32
	}{{Sizing{}, 100, 12809}, {Sizing{PerBackend: 100}, 100, 12809}, {Sizing{PerBackend: 200}, 100, 25601},
		{Sizing{PerBackend: 200}, 1, 211}, {Sizing{PerBackend: 1000, Limit: 65537}, 100, 65537}, {Sizing{PerBackend: 10_000, Limit: 1021}, 3, 1021}} {
		if got := c.z.Size(c.n); got != c.want || !isPrime(got) {
			t.Errorf("%+v.Size(%d) = %d, want %d", c.z, c.n, got, c.want)
		}
	}
}
