package maglev

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// checkSize reports whether size can be a table size.
func checkSize(size uint32) error {
	if size > MaxSize {
		return fmt.Errorf("table size %d is larger than %d", size, MaxSize)
	}
	if !isPrime(size) {
		return fmt.Errorf("table size %d is not prime", size)
	}
	return nil
}

// isPrime tests n by trial division, which is at most a few thousand
// divisions for n ≤ MaxSize.
func isPrime(n uint32) bool {
	if n < 4 {
		return n >= 2
	}
	if n%2 == 0 || n%3 == 0 {
		return false
	}
	for d := uint32(5); d*d <= n; d += 6 {
		if n%d == 0 || n%(d+2) == 0 {
			return false
		}
	}
	return true
}

// sortKeys fills order with the indices of backends sorted by key (the
// canonical order every later step uses, so that the table does not
// depend on the order of the input) and rejects empty and repeated keys.
func sortKeys(order []int32, backends []Backend) ([]int32, error) {
	if len(backends) > math.MaxInt32 {
		return order, fmt.Errorf("%d backends is more than %d", len(backends), math.MaxInt32)
	}
	order = order[:0]
	for i := range backends {
		order = append(order, int32(i))
	}
	slices.SortFunc(order, func(a, b int32) int {
		return strings.Compare(backends[a].Key, backends[b].Key)
	})
	for i, idx := range order {
		key := backends[idx].Key
		if key == "" {
			return order, fmt.Errorf("backend %d has an empty key", idx)
		}
		if i > 0 && backends[order[i-1]].Key == key {
			a, b := min(order[i-1], idx), max(order[i-1], idx)
			return order, fmt.Errorf("backends %d and %d have the same key %q", a, b, key)
		}
	}
	return order, nil
}
