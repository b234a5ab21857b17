package maglev

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestBuildErrors(t *testing.T) {
	ok := equalBackends(3)
	for _, tc := range []struct {
		name     string
		backends []Backend
		size     uint32
		want     string
	}{
		{"size 0", ok, 0, "not prime"},
		{"size 1", ok, 1, "not prime"},
		{"size 65536", ok, 65536, "not prime"},
		{"size 65535", ok, 65535, "not prime"},
		{"size 3·5", ok, 15, "not prime"},
		{"size 4093²", ok, 4093 * 4093, "not prime"},
		{"size above max", ok, 16777259, "larger than"},
		{"duplicate key", []Backend{{"a", 1}, {"b", 1}, {"a", 2}}, 7, `backends 0 and 2 have the same key "a"`},
		{"duplicate drained key", []Backend{{"a", 0}, {"a", 0}}, 7, "same key"},
		{"empty key", []Backend{{"a", 1}, {"", 1}}, 7, "backend 1 has an empty key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table, err := Build(tc.backends, tc.size)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "maglev build: ") {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if table != nil {
				t.Fatalf("table = %d entries, want nil", len(table))
			}
		})
	}
}

func TestIsPrime(t *testing.T) {
	sieve := make([]bool, 100000)
	for i := 2; i < len(sieve); i++ {
		sieve[i] = true
	}
	for i := 2; i*i < len(sieve); i++ {
		if sieve[i] {
			for j := i * i; j < len(sieve); j += i {
				sieve[j] = false
			}
		}
	}
	for n := range sieve {
		if got := isPrime(uint32(n)); got != sieve[n] {
			t.Fatalf("isPrime(%d) = %v", n, got)
		}
	}
	for _, p := range []uint32{65537, 655373, 16777213} {
		if !isPrime(p) {
			t.Errorf("isPrime(%d) = false", p)
		}
	}
	for _, c := range []uint32{4093 * 4099, 65537 * 3, 16777215} {
		if isPrime(c) {
			t.Errorf("isPrime(%d) = true", c)
		}
	}
}

func TestNoWeight(t *testing.T) {
	for _, bs := range [][]Backend{nil, {}, {{"a", 0}}, {{"a", 0}, {"b", 0}, {"c", 0}}} {
		table := mustBuild(t, bs, 13)
		if len(table) != 13 {
			t.Fatalf("len = %d", len(table))
		}
		for i, v := range table {
			if v != -1 {
				t.Fatalf("%d backends, all drained: slot %d = %d, want -1", len(bs), i, v)
			}
		}
	}
}

func TestDrainedGetNothing(t *testing.T) {
	bs := equalBackends(20)
	for _, i := range []int{0, 7, 19} {
		bs[i].Weight = 0
	}
	c := counts(mustBuild(t, bs, bigSize), len(bs))
	for i, n := range c {
		if (bs[i].Weight == 0) != (n == 0) {
			t.Errorf("backend %d weight %d has %d slots", i, bs[i].Weight, n)
		}
	}
}

func TestSingleBackend(t *testing.T) {
	bs := []Backend{{"a", 0}, {"b", 5}, {"c", 0}}
	for i, v := range mustBuild(t, bs, 7) {
		if v != 1 {
			t.Fatalf("slot %d = %d, want 1", i, v)
		}
	}
}

// TestOrderIndependence checks that permuting the input only renames the
// indices in the table.
func TestOrderIndependence(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, bs := range [][]Backend{equalBackends(100), randomBackends(100, 1000, 3), randomBackends(7, 3, 4)} {
		bs = slices.Clone(bs)
		bs[5].Weight = 0
		want := owners(mustBuild(t, bs, 4093), bs)
		for range 5 {
			r.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
			if got := owners(mustBuild(t, bs, 4093), bs); !slices.Equal(got, want) {
				t.Fatal("a permuted input gives a different table")
			}
		}
	}
}

// TestBuilderReuse checks that a Builder gives the same tables as Build
// across builds of different shapes and reuses dst.
func TestBuilderReuse(t *testing.T) {
	var b Builder
	var dst []int32
	for i, tc := range []struct {
		bs   []Backend
		size uint32
	}{
		{equalBackends(1000), bigSize},
		{randomBackends(10, 50, 1), 251},
		{nil, 7},
		{randomBackends(300, 65535, 2), bigSize},
		{equalBackends(3), 13},
	} {
		got, err := b.Build(dst, tc.bs, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		if want := mustBuild(t, tc.bs, tc.size); !slices.Equal(got, want) {
			t.Fatalf("build %d: Builder and Build disagree", i)
		}
		if cap(dst) >= int(tc.size) && &got[0] != &dst[:1][0] {
			t.Fatalf("build %d: dst not reused", i)
		}
		dst = got
	}
}

func TestPermutationRange(t *testing.T) {
	for _, size := range []uint32{2, 3, 7, 65537} {
		for i := range 1000 {
			off, skip := permutation(addrKey(i), size)
			if off >= size || skip < 1 || skip >= size {
				t.Fatalf("size %d key %q: offset %d skip %d", size, addrKey(i), off, skip)
			}
		}
	}
}

// TestGolden pins the table format. Every load balancer behind one ECMP
// group must build the same table from the same backends, across
// processes and versions; if this test fails, the change reshuffles
// flows during a rolling upgrade and must be deliberate.
func TestGolden(t *testing.T) {
	off, skip := permutation("192.0.2.1", bigSize)
	if off != 3707 || skip != 3080 {
		t.Errorf("permutation(192.0.2.1) = %d, %d", off, skip)
	}
	bs := randomBackends(50, 100, 42)
	h := fnv.New64a()
	for _, k := range owners(mustBuild(t, bs, bigSize), bs) {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	if got := h.Sum64(); got != 0x9049379149041541 {
		t.Errorf("table digest = %#x", got)
	}
}

// TestModularArithmetic checks the inverse and the Barrett reduction the
// last turns of a fill rely on, against plain division.
func TestModularArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for _, m := range []uint32{2, 3, 7, 4093, 12809, bigSize, 655373, 16777213} {
		md := newModulus(m)
		for range 1000 {
			a := 1 + r.Uint32N(m-1)
			if inv := inverse(a, m); uint64(a)*uint64(inv)%uint64(m) != 1 {
				t.Fatalf("inverse(%d, %d) = %d", a, m, inv)
			}
			x := r.Uint64N(uint64(2*m) * uint64(m))
			if got, want := md.reduce(x), x%uint64(m); got != want {
				t.Fatalf("%d mod %d: reduce gives %d, want %d", x, m, got, want)
			}
		}
		if got := md.reduce(uint64(2*m)*uint64(m) - 1); got != uint64(m)-1 {
			t.Fatalf("largest product mod %d: %d", m, got)
		}
	}
}
