package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRackDowngrade: lb1 runs the current build (its maps pinned) and is
// replaced by the previous build (previousBuild; AIRD_LAB_DOWNGRADE_TO=REV
// builds commit REV instead) under continuous traffic, as a rollback does
// it: that build adopts the pins whose layout it shares, replaces the
// others, and the rack goes on serving - no request fails, no established
// connection breaks, no route leaves the ToRs (underLoad). Which pinned
// maps it adopted, which it created afresh (their counters and state
// start again from zero) and which pins it removed is logged.
func TestRackDowngrade(t *testing.T) {
	var old, rev string
	if r := os.Getenv("AIRD_LAB_DOWNGRADE_TO"); r != "" {
		old, rev = buildAt(t, r)
	} else {
		old, rev = previousBuild(t)
	}
	l := upLab(t)
	lb1 := l.LBs[0]
	if err := l.waitServing(); err != nil {
		t.Fatal(err)
	}
	t.Run("downgrade", func(t *testing.T) {
		underLoad(t, l, 10000, func(t *testing.T) {
			if err := lb1.Restart(old); err != nil {
				t.Fatalf("start the previous build (%s) on lb1: %v", rev[:12], err)
			}
			if err := l.waitServing(); err != nil {
				t.Fatalf("the previous build (%s) on lb1: %v", rev[:12], err)
			}
		})
	})
	// The pins the previous build did not adopt are maps it created
	// afresh: their state (counters, flows) started again from empty.
	log := logOf(t, lb1)
	adopted := map[string]bool{}
	var removed []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "adopted pinned map") {
			if _, name, ok := strings.Cut(line, " map="); ok {
				name, _, _ = strings.Cut(name, " ")
				adopted[name] = true
			}
		}
		if strings.Contains(line, "removed the pin of a map") {
			if _, pin, ok := strings.Cut(line, " pin="); ok {
				removed = append(removed, filepath.Base(strings.Fields(pin)[0]))
			}
		}
	}
	entries, err := os.ReadDir(filepath.Join(lb1.pinPath(), "maps"))
	if err != nil {
		t.Fatal(err)
	}
	var fresh []string
	for _, e := range entries {
		if !adopted[e.Name()] {
			fresh = append(fresh, e.Name())
		}
	}
	if len(adopted) == 0 {
		t.Errorf("the previous build adopted no pinned map (no log line)")
	}
	t.Logf("lb1 runs aird built at %s: %d pinned maps adopted, created afresh %v, pins removed %v",
		rev[:12], len(adopted), fresh, removed)
}
