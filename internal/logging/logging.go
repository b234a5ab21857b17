package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
)

// Logger owns the daemon's slog.Logger and lets its level and format change
// at run time; loggers derived with With keep following those changes.
type Logger struct {
	*slog.Logger
	level   *slog.LevelVar
	out     io.Writer
	journal bool     // w is the journal's stream
	send    sendFunc // journal.Send, or nil for "<N>" prefixes on out
	current *atomic.Pointer[slog.Handler]
}

// New returns a logger writing to w at the given level and format ("text"
// or "json"). When w is stderr connected to journald (under systemd), each
// record becomes a structured journal entry with its priority and its
// attributes as fields (journalHandler), or, if journald's socket does not
// answer, a line with a "<N>" priority prefix; either way without the time,
// which the journal records itself.
func New(w io.Writer, level, format string) (*Logger, error) {
	send, prefixed := journalOutput(w)
	return newLogger(w, level, format, send != nil || prefixed, send)
}

func newLogger(w io.Writer, level, format string, journal bool, send sendFunc) (*Logger, error) {
	l := &Logger{
		level:   new(slog.LevelVar),
		out:     w,
		journal: journal,
		send:    send,
		current: new(atomic.Pointer[slog.Handler]),
	}
	if err := l.SetLevel(level); err != nil {
		return nil, err
	}
	if err := l.SetFormat(format); err != nil {
		return nil, err
	}
	l.Logger = slog.New(&switchHandler{current: l.current})
	return l, nil
}

// ParseLevel accepts debug, info, warn and error.
func ParseLevel(s string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil || strings.ContainsAny(s, "+-") {
		return 0, fmt.Errorf("invalid log level %q: use debug, info, warn or error", s)
	}
	return lv, nil
}

// SetLevel changes the level of every logger derived from l.
func (l *Logger) SetLevel(s string) error {
	lv, err := ParseLevel(s)
	if err != nil {
		return err
	}
	l.level.Set(lv)
	return nil
}

// Level returns the current level's name in lower case.
func (l *Logger) Level() string { return strings.ToLower(l.level.Level().String()) }

// SetFormat switches between "text" and "json" output.
func (l *Logger) SetFormat(format string) error {
	opts := &slog.HandlerOptions{Level: l.level}
	var h slog.Handler
	switch {
	case l.journal:
		jh, err := newJournalHandler(l.send, l.out, format, l.level)
		if err != nil {
			return err
		}
		h = jh
	case format == "text":
		h = slog.NewTextHandler(l.out, opts)
	case format == "json":
		h = slog.NewJSONHandler(l.out, opts)
	default:
		return fmt.Errorf("invalid log format %q: use text or json", format)
	}
	l.current.Store(&h)
	return nil
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// switchHandler forwards records to whichever handler is current, replaying
// the attributes and groups added with WithAttrs and WithGroup.
type switchHandler struct {
	current *atomic.Pointer[slog.Handler]
	ops     []func(slog.Handler) slog.Handler
}

func (s *switchHandler) resolve() slog.Handler {
	h := *s.current.Load()
	for _, op := range s.ops {
		h = op(h)
	}
	return h
}

func (s *switchHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return (*s.current.Load()).Enabled(ctx, lv)
}

func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.resolve().Handle(ctx, r)
}

func (s *switchHandler) with(op func(slog.Handler) slog.Handler) *switchHandler {
	ops := append(append([]func(slog.Handler) slog.Handler{}, s.ops...), op)
	return &switchHandler{current: s.current, ops: ops}
}

func (s *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return s.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })
}

func (s *switchHandler) WithGroup(name string) slog.Handler {
	return s.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}
