package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestLevelAndFormatChangeLive(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	var buf bytes.Buffer
	l, err := New(&buf, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	child := l.With("component", "bgp")
	child.Debug("hidden")
	if buf.Len() != 0 {
		t.Fatalf("debug line written at info level: %q", buf.String())
	}
	if err := l.SetLevel("debug"); err != nil {
		t.Fatal(err)
	}
	child.Debug("shown")
	if !strings.Contains(buf.String(), "msg=shown component=bgp") {
		t.Fatalf("derived logger did not follow the level change: %q", buf.String())
	}
	buf.Reset()
	if err := l.SetFormat("json"); err != nil {
		t.Fatal(err)
	}
	child.Info("as json")
	if !strings.Contains(buf.String(), `"component":"bgp"`) || !strings.Contains(buf.String(), `"msg":"as json"`) {
		t.Fatalf("derived logger did not follow the format change: %q", buf.String())
	}
	if l.Level() != "debug" {
		t.Fatalf("Level() = %q", l.Level())
	}
}

func TestRejectsBadLevelAndFormat(t *testing.T) {
	var buf bytes.Buffer
	for _, lv := range []string{"loud", "info+2", ""} {
		if _, err := New(&buf, lv, "text"); err == nil {
			t.Errorf("level %q accepted", lv)
		}
	}
	if _, err := New(&buf, "info", "xml"); err == nil {
		t.Error("format xml accepted")
	}
}

func TestJOURNAL_STREAMAloneIsNotTheJournal(t *testing.T) {
	// Set, but w is not stderr connected to the journal (a child of a
	// service started from a shell, a test): plain lines with the time.
	t.Setenv("JOURNAL_STREAM", "8:1234")
	var buf bytes.Buffer
	l, err := New(&buf, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hello")
	if !strings.Contains(buf.String(), "time=") || strings.HasPrefix(buf.String(), "<") {
		t.Fatalf("not a plain line: %q", buf.String())
	}
}
