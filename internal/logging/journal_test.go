package logging

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

type entry struct {
	msg    string
	prio   journal.Priority
	fields map[string]string
}

func TestJournalEntries(t *testing.T) {
	var got []entry
	send := func(msg string, prio journal.Priority, fields map[string]string) error {
		got = append(got, entry{msg, prio, fields})
		return nil
	}
	var fallback bytes.Buffer
	l, err := newLogger(&fallback, "debug", "text", true, send)
	if err != nil {
		t.Fatal(err)
	}
	bgp := l.With("component", "bgp").WithGroup("peer")
	bgp.Error("session down", "name", "tor1", "message", "clash", "err", errors.New("hold timer expired"))
	l.Debug("d")
	l.Info("i", "n", 3)
	l.Warn("w", "1st", "x", "a.b-c", "y")
	if fallback.Len() != 0 {
		t.Fatalf("fallback written although sending worked: %q", fallback.String())
	}
	if len(got) != 4 {
		t.Fatalf("%d entries, want 4", len(got))
	}
	e := got[0]
	if e.prio != journal.PriErr {
		t.Errorf("error logged at priority %d, want 3", e.prio)
	}
	if strings.Contains(e.msg, "time=") || !strings.Contains(e.msg, "level=ERROR msg=\"session down\" component=bgp peer.name=tor1") {
		t.Errorf("MESSAGE = %q", e.msg)
	}
	for k, want := range map[string]string{
		"SYSLOG_IDENTIFIER": "aird",
		"COMPONENT":         "bgp",
		"PEER_NAME":         "tor1",
		"PEER_MESSAGE":      "clash",
		"PEER_ERR":          "hold timer expired",
	} {
		if e.fields[k] != want {
			t.Errorf("field %s = %q, want %q (fields %v)", k, e.fields[k], want, e.fields)
		}
	}
	if !strings.HasSuffix(e.fields["CODE_FILE"], "journal_test.go") || e.fields["CODE_LINE"] == "" || !strings.Contains(e.fields["CODE_FUNC"], "TestJournalEntries") {
		t.Errorf("CODE_* fields: %v", e.fields)
	}
	if got[1].prio != journal.PriDebug || got[2].prio != journal.PriInfo || got[3].prio != journal.PriWarning {
		t.Errorf("priorities %d %d %d, want 7 6 4", got[1].prio, got[2].prio, got[3].prio)
	}
	if got[2].fields["N"] != "3" || got[3].fields["AIRD_1ST"] != "x" || got[3].fields["A_B_C"] != "y" {
		t.Errorf("field names: %v / %v", got[2].fields, got[3].fields)
	}

	// The level still filters, and the format switch reaches the journal.
	got = nil
	if err := l.SetLevel("warn"); err != nil {
		t.Fatal(err)
	}
	if err := l.SetFormat("json"); err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", "v")
	if len(got) != 1 || !strings.HasPrefix(got[0].msg, `{"level":"WARN","msg":"shown","k":"v"}`) || got[0].fields["K"] != "v" {
		t.Fatalf("after set level warn and format json: %+v", got)
	}
}

func TestJournalFallbackPrefixes(t *testing.T) {
	var out bytes.Buffer
	failing := func(string, journal.Priority, map[string]string) error { return errors.New("no journald") }
	for _, send := range []sendFunc{nil, failing} {
		out.Reset()
		l, err := newLogger(&out, "info", "text", true, send)
		if err != nil {
			t.Fatal(err)
		}
		l.Error("reload rejected", "err", "line 1\nline 2")
		l.Info("fine")
		want := "<3>level=ERROR msg=\"reload rejected\" err=\"line 1\\nline 2\"\n<6>level=INFO msg=fine\n"
		if out.String() != want {
			t.Errorf("send %v: got %q, want %q", send != nil, out.String(), want)
		}
	}
}
