package bgp

import (
	"fmt"
	"testing"
	"time"
)

// 10,000 VIPs reach BIRD through batched AddPath calls, and leave it
// through batched DeletePath calls.
func TestBatchAdvertise10k(t *testing.T) {
	const n = 10000
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001}))
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		sp := startSpeaker(t, l, tor1TOML(l, tor.Addr, ""), nil)
		waitEstablished(t, sp, tor.Addr, 20*time.Second)
		routes := prefixes("fd00:400::1", n)

		start := time.Now()
		if err := sp.SetAdvertised(routes); err != nil {
			t.Fatal(err)
		}
		call := time.Since(start)
		took := eventually(t, 60*time.Second, "BIRD holds all the routes", func() (bool, string) {
			c := birdCount(t, tor, "node1", "master6")
			return c == n, fmt.Sprintf("%d routes", c)
		})
		t.Logf("SetAdvertised(%d /128s): the call took %s, all %d in BIRD %s after it was made",
			n, call.Round(time.Millisecond), n, (call + took).Round(time.Millisecond))
		if a := neighbor(sp, tor.Addr).Advertised; a != n {
			t.Errorf("advertised to tor1: %d, want %d", a, n)
		}

		// Keep the first 100: 9,900 withdrawals.
		start = time.Now()
		if err := sp.SetAdvertised(routes[:100]); err != nil {
			t.Fatal(err)
		}
		call = time.Since(start)
		took = eventually(t, 60*time.Second, "BIRD keeps only 100", func() (bool, string) {
			c := birdCount(t, tor, "node1", "master6")
			return c == 100, fmt.Sprintf("%d routes", c)
		})
		t.Logf("SetAdvertised withdrawing %d: the call took %s, BIRD down to 100 %s after it was made",
			n-100, call.Round(time.Millisecond), (call + took).Round(time.Millisecond))

		// The advertised count follows the withdrawal, and is read from
		// GoBGP (which runs the export again to count) only after a change.
		if a := neighbor(sp, tor.Addr).Advertised; a != 100 {
			t.Errorf("advertised to tor1 after the withdrawal: %d, want 100", a)
		}
		readAt := func() time.Time {
			c := &sp.run.advertised
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.at
		}
		before := readAt()
		if a := neighbor(sp, tor.Addr).Advertised; a != 100 || !readAt().Equal(before) {
			t.Errorf("unchanged routes: advertised %d (want 100), counted again: %t (want false)", a, !readAt().Equal(before))
		}
		if err := sp.SetAdvertised(routes[:99]); err != nil {
			t.Fatal(err)
		}
		if a := neighbor(sp, tor.Addr).Advertised; a != 99 || readAt().Equal(before) {
			t.Errorf("one more withdrawn: advertised %d (want 99), counted again: %t (want true)", a, !readAt().Equal(before))
		}
	})
}
