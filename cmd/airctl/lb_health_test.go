package main

import (
	"testing"

	"github.com/aird-net/aird/internal/api"
)

// TestHealthText: HEALTHY in `airctl lb backends` is "pending" for a
// checked backend whose health is not decided yet (after a restart, docs/
// operator-guide.md), else yes or no; an unchecked backend (type "none")
// is as healthy as the daemon says.
func TestHealthText(t *testing.T) {
	for _, c := range []struct {
		h    api.LBHealth
		want string
	}{
		{api.LBHealth{Checked: true, Known: false, Healthy: true}, "pending"},
		{api.LBHealth{Checked: true, Known: true, Healthy: true}, "yes"},
		{api.LBHealth{Checked: true, Known: true, Healthy: false}, "no"},
		{api.LBHealth{Checked: false, Healthy: true}, "yes"},
	} {
		if got := healthText(c.h); got != c.want {
			t.Errorf("healthText(%+v) = %q, want %q", c.h, got, c.want)
		}
	}
}
