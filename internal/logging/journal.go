package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/coreos/go-systemd/v22/journal"
)

// Identifier is the SYSLOG_IDENTIFIER of aird's journal entries.
const Identifier = "aird"

// sendFunc delivers one journal entry (journal.Send in production).
type sendFunc func(message string, priority journal.Priority, fields map[string]string) error

// priority maps a slog level to a syslog priority: debug 7, info 6,
// warn 4, error 3.
func priority(l slog.Level) journal.Priority {
	switch {
	case l < slog.LevelInfo:
		return journal.PriDebug
	case l < slog.LevelWarn:
		return journal.PriInfo
	case l < slog.LevelError:
		return journal.PriWarning
	}
	return journal.PriErr
}

// journalOutput decides how a logger writing to w reaches journald:
// natively (structured entries) when w is the process's stderr connected
// to the journal's stream (systemd sets JOURNAL_STREAM to its device and
// inode) and journald's socket answers; with "<N>" priority prefixes on the
// stream when it is the journal's but the socket does not answer; not at
// all (nil, false) otherwise.
func journalOutput(w io.Writer) (send sendFunc, prefixed bool) {
	f, ok := w.(*os.File)
	if !ok || !isJournalStream(f) {
		return nil, false
	}
	if journal.Enabled() {
		return journal.Send, false
	}
	return nil, true
}

func isJournalStream(f *os.File) bool {
	var dev, ino uint64
	if _, err := fmt.Sscanf(os.Getenv("JOURNAL_STREAM"), "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// journalHandler renders each record with the configured format (text or
// JSON, without the time: the journal stamps entries) into MESSAGE, and
// sends it with PRIORITY, SYSLOG_IDENTIFIER, CODE_FILE/LINE/FUNC and every
// attribute as a field of its own (key upper-cased, groups joined with
// "_": peer=tor1 -> PEER=tor1). When sending fails the line goes to the
// fallback writer with a "<N>" priority prefix, which journald's stream
// transport understands.
type journalHandler struct {
	st     *journalState
	inner  slog.Handler // renders MESSAGE into st.buf
	fields []field      // from WithAttrs
	groups []string
}

type field struct{ name, value string }

// journalState is shared by a handler and all handlers derived from it.
type journalState struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	send     sendFunc // nil: write "<N>" lines to fallback
	fallback io.Writer
}

func newJournalHandler(send sendFunc, fallback io.Writer, format string, level slog.Leveler) (*journalHandler, error) {
	st := &journalState{send: send, fallback: fallback}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}
	var inner slog.Handler
	switch format {
	case "text":
		inner = slog.NewTextHandler(&st.buf, opts)
	case "json":
		inner = slog.NewJSONHandler(&st.buf, opts)
	default:
		return nil, fmt.Errorf("invalid log format %q: use text or json", format)
	}
	return &journalHandler{st: st, inner: inner}, nil
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := map[string]string{"SYSLOG_IDENTIFIER": Identifier}
	for _, f := range h.fields {
		fields[f.name] = f.value
	}
	r.Attrs(func(a slog.Attr) bool {
		addField(fields, h.groups, a)
		return true
	})
	if r.PC != 0 {
		fr, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		fields["CODE_FILE"], fields["CODE_LINE"], fields["CODE_FUNC"] = fr.File, strconv.Itoa(fr.Line), fr.Function
	}
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	h.st.buf.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	msg := strings.TrimSuffix(h.st.buf.String(), "\n")
	prio := priority(r.Level)
	if h.st.send != nil {
		if err := h.st.send(msg, prio, fields); err == nil {
			return nil
		}
	}
	// Every line gets the prefix: journald's stream transport reads one
	// entry per line.
	var out strings.Builder
	for _, line := range strings.Split(msg, "\n") {
		fmt.Fprintf(&out, "<%d>%s\n", prio, line)
	}
	_, err := io.WriteString(h.st.fallback, out.String())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	m := map[string]string{}
	for _, a := range as {
		addField(m, h.groups, a)
	}
	fields := append([]field(nil), h.fields...)
	for name, v := range m {
		fields = append(fields, field{name, v})
	}
	return &journalHandler{st: h.st, inner: h.inner.WithAttrs(as), fields: fields, groups: h.groups}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	groups := append(append([]string(nil), h.groups...), name)
	return &journalHandler{st: h.st, inner: h.inner.WithGroup(name), fields: h.fields, groups: groups}
}

// addField adds attribute a (under groups) to fields, flattening groups.
func addField(fields map[string]string, groups []string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		g := groups
		if a.Key != "" {
			g = append(append([]string(nil), groups...), a.Key)
		}
		for _, sub := range v.Group() {
			addField(fields, g, sub)
		}
		return
	}
	if a.Key == "" {
		return
	}
	fields[fieldName(append(append([]string(nil), groups...), a.Key))] = v.String()
}

// reserved are fields a slog attribute must not overwrite: those this
// handler sets, and journald's well-known ones.
var reserved = map[string]bool{
	"MESSAGE": true, "MESSAGE_ID": true, "PRIORITY": true, "CODE_FILE": true, "CODE_LINE": true,
	"CODE_FUNC": true, "ERRNO": true, "SYSLOG_IDENTIFIER": true, "SYSLOG_FACILITY": true,
	"SYSLOG_PID": true, "SYSLOG_TIMESTAMP": true, "SYSLOG_RAW": true, "INVOCATION_ID": true,
	"USER_INVOCATION_ID": true, "DOCUMENTATION": true, "TID": true, "UNIT": true, "USER_UNIT": true,
	"OBJECT_PID": true, "COREDUMP_UNIT": true, "COREDUMP_USER_UNIT": true,
}

// fieldName turns a key path into a journal field name: upper case, every
// character other than A-Z, 0-9 and _ replaced by _, never starting with
// _ or a digit, and never one of the reserved names (those get "AIRD_").
func fieldName(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 {
			b.WriteByte('_')
		}
		for _, r := range strings.ToUpper(p) {
			if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
	}
	name := b.String()
	if name == "" || name[0] == '_' || name[0] >= '0' && name[0] <= '9' || reserved[name] {
		name = "AIRD_" + strings.TrimLeft(name, "_")
	}
	if len(name) > 64 { // journald's limit on field names
		name = name[:64]
	}
	return name
}
