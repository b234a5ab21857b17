package bgp

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// GoBGP's records carry one component field (the daemon's) and
// subsystem=gobgp; a record GoBGP repeats for the same peer is logged at
// its level once a minute, at debug level in between (counted), and the
// next one at its level says how many were demoted.
func TestGoBGPLog(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "bgp")
	rep := newLogRepeats()
	now := time.Unix(1000, 0)
	rep.now = func() time.Time { return now }
	l := newGoBGPLogger(base, &atomic.Bool{}, rep)
	peerA := l.With("Topic", "Peer", "Key", "fd00::1")
	peerB := l.With("Topic", "Peer", "Key", "fd00::2")
	for range 5 {
		peerA.Warn("Closed an accepted connection", "State", "BGP_FSM_IDLE")
		now = now.Add(1500 * time.Millisecond)
	}
	peerB.Warn("Closed an accepted connection")
	peerA.Error("some error")
	peerA.Error("some error")
	// GoBGP's BFD names the peer in the record, not in the logger.
	l.Warn("Expired", "Topic", "bfd", "Peer", "fd00::1")
	l.Warn("Expired", "Topic", "bfd", "Peer", "fd00::2")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6 (A once, B once, the errors twice, each peer's BFD expiry):\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		if strings.Count(line, "component=") != 1 || !strings.Contains(line, "subsystem=gobgp") {
			t.Errorf("line %q: want one component field and subsystem=gobgp", line)
		}
	}
	if got := rep.demote.Load(); got != 4 {
		t.Errorf("demoted %d, want 4", got)
	}
	buf.Reset()
	now = now.Add(repeatWindow)
	peerA.Warn("Closed an accepted connection")
	if !strings.Contains(buf.String(), "repeats_at_debug_level=4") || !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("after the window: %q", buf.String())
	}
}
