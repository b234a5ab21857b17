package maglev

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// bigSize is the default table size (config.DefaultMaglevTableSize).
const bigSize = 65537

// addrKey is the key of the i-th test backend: an IPv4 address as text.
func addrKey(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
}

// equalBackends returns n backends of weight 100.
func equalBackends(n int) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{Key: addrKey(i), Weight: 100}
	}
	return bs
}

// randomBackends returns n backends with weights drawn from [1, maxW].
func randomBackends(n int, maxW uint32, seed uint64) []Backend {
	r := rand.New(rand.NewPCG(seed, 0x6d61676c6576))
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{Key: addrKey(i), Weight: 1 + r.Uint32N(maxW)}
	}
	return bs
}

// mustBuild builds a table or fails the test.
func mustBuild(t testing.TB, bs []Backend, size uint32) []int32 {
	t.Helper()
	table, err := Build(bs, size)
	if err != nil {
		t.Fatalf("Build(%d backends, %d): %v", len(bs), size, err)
	}
	return table
}

// counts returns how many slots each backend owns.
func counts(table []int32, n int) []int {
	c := make([]int, n)
	for _, v := range table {
		if v >= 0 {
			c[v]++
		}
	}
	return c
}

// owners maps each slot to the key of its backend ("" for -1).
func owners(table []int32, bs []Backend) []string {
	o := make([]string, len(table))
	for i, v := range table {
		if v >= 0 {
			o[i] = bs[v].Key
		}
	}
	return o
}
