package integration

import "testing"

// TestLogLevelAtRunTime: `airctl log-level LEVEL` lasts until a reload
// that changes [log] or a restart; a reload that leaves [log] alone keeps
// it (docs/configuration.md, [log]).
func TestLogLevelAtRunTime(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.start()
	level := func(want, when string) {
		t.Helper()
		if got := n.status().LogLevel; got != want {
			t.Fatalf("%s: log level %q, want %q", when, got, want)
		}
	}
	if _, errs, code := n.airctl("log-level", "debug"); code != 0 {
		t.Fatalf("airctl log-level debug: exit %d: %s", code, errs)
	}
	level("debug", "after airctl log-level debug")
	if _, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s", code, errs)
	}
	level("debug", "after a reload that leaves [log] alone")
	n.writeConfig(n.config("warn", "uplink0"))
	if _, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s", code, errs)
	}
	level("warn", "after a reload that changes log.level")
	if _, errs, code := n.airctl("log-level", "debug"); code != 0 {
		t.Fatalf("airctl log-level debug: exit %d: %s", code, errs)
	}
	n.stopForRestart()
	n.start()
	level("warn", "after a restart")
}
