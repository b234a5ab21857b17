package bgp

import (
	"testing"
	"time"
)

// TestCeaseDelay: an intended stop gives the withdrawals 100 ms plus 10 µs
// a route to leave before the CEASE, at most 2 s (docs/operator-guide.md,
// "Restarts keep the data plane and the routes").
func TestCeaseDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{
		0:         100 * time.Millisecond,
		1000:      110 * time.Millisecond,
		100_000:   1100 * time.Millisecond,
		190_000:   2 * time.Second,
		1_000_000: 2 * time.Second,
	} {
		if got := ceaseDelay(n); got != want {
			t.Errorf("ceaseDelay(%d) = %v, want %v", n, got, want)
		}
	}
}
