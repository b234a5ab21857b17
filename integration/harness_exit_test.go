package integration

import (
	"strings"
	"testing"
	"time"
)

// TestStartReturnsOnExit: an aird that exits before READY=1 (here on a
// configuration it refuses) ends the harness's wait for READY=1 at once,
// not at its timeout, and the error gives the exit status and aird's own
// last words (the file, line and key it refused).
func TestStartReturnsOnExit(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0") + "\n[lb]\nno-such-key = 1\n")
	began := time.Now()
	err := n.startErr(2 * time.Minute)
	took := time.Since(began)
	if err == nil {
		t.Fatal("aird became ready with an unknown key in its configuration")
	}
	t.Logf("after %s: %v", took.Round(time.Millisecond), err)
	// aird refuses the file in milliseconds; the wait would last 2 min.
	if took > 20*time.Second {
		t.Errorf("the harness took %s to notice that aird had exited", took.Round(time.Millisecond))
	}
	for _, want := range []string{"exit status 1", n.cfgPath + ":", "no-such-key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q: %v", want, err)
		}
	}
}
