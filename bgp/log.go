package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// gobgpLog hands GoBGP's records to the speaker's logger, marked
// subsystem=gobgp (the speaker's logger already carries the daemon's
// component=bgp: one component field per line). It keeps the log readable:
//
//   - a record of level warning or below that GoBGP repeats (the same
//     message for the same peer, such as "Closed an accepted connection"
//     every second or two while a peer keeps connecting to an idle
//     session) is logged once per repeatWindow at its level; the repeats
//     in between go out at debug level, counted in Speaker's metrics
//     (aird_bgp_gobgp_log_repeats_total), and the first record after the
//     window says how many there were;
//   - while the speaker stops it drops the one error GoBGP logs when its
//     Stop finds BGP already stopped (we stop BGP first, without CEASE,
//     then call Stop to end its BFD and gRPC servers).
type gobgpLog struct {
	next     slog.Handler
	stopping *atomic.Bool
	repeats  *logRepeats
	scope    string // the attributes GoBGP added (its Topic and Key)
}

// repeatWindow is how often a repeated GoBGP record is logged at its level.
const repeatWindow = time.Minute

// logRepeats remembers when each record was last logged at its level.
type logRepeats struct {
	mu     sync.Mutex
	last   map[string]*repeatState
	demote atomic.Uint64 // records demoted to debug
	now    func() time.Time
}

type repeatState struct {
	at      time.Time
	demoted int
}

// maxRepeatKeys bounds the memory of logRepeats (peers come and go).
const maxRepeatKeys = 4096

func newLogRepeats() *logRepeats {
	return &logRepeats{last: map[string]*repeatState{}, now: time.Now}
}

// see records a record under key; it reports whether it is a repeat to
// demote, and otherwise how many were demoted since it was last logged.
func (l *logRepeats) see(key string) (demote bool, since int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	st := l.last[key]
	if st != nil && now.Sub(st.at) < repeatWindow {
		st.demoted++
		l.demote.Add(1)
		return true, 0
	}
	if st == nil {
		if len(l.last) >= maxRepeatKeys {
			clear(l.last)
		}
		st = &repeatState{}
		l.last[key] = st
	}
	since, st.demoted, st.at = st.demoted, 0, now
	return false, since
}

func newGoBGPLogger(l *slog.Logger, stopping *atomic.Bool, repeats *logRepeats) *slog.Logger {
	return slog.New(&gobgpLog{next: l.Handler().WithAttrs([]slog.Attr{slog.String("subsystem", "gobgp")}), stopping: stopping, repeats: repeats})
}

func (h *gobgpLog) Enabled(ctx context.Context, l slog.Level) bool {
	// Repeats are demoted, not dropped: a warning may still be logged at
	// debug level.
	return h.next.Enabled(ctx, l)
}

func (h *gobgpLog) Handle(ctx context.Context, r slog.Record) error {
	if h.stopping.Load() && r.Message == "failed to stop BGP server" {
		return nil
	}
	if r.Level <= slog.LevelWarn && r.Level > slog.LevelDebug {
		demote, since := h.repeats.see(h.scope + recordPeer(r) + "\x00" + r.Message)
		if demote {
			if !h.next.Enabled(ctx, slog.LevelDebug) {
				return nil
			}
			r = r.Clone()
			r.Level = slog.LevelDebug
		} else if since > 0 {
			r = r.Clone()
			r.AddAttrs(slog.Int("repeats_at_debug_level", since))
		}
	}
	return h.next.Handle(ctx, r)
}

// recordPeer is the peer a record names in its own attributes (GoBGP's BFD
// records carry Peer, some others Key, instead of a logger With them): two
// peers' records are not repeats of each other - a BFD expiry of one peer
// must not hide the next peer's.
func recordPeer(r slog.Record) string {
	var peer string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "Peer" || a.Key == "Key" {
			peer += a.Key + "=" + a.Value.String() + " "
		}
		return true
	})
	return peer
}

func (h *gobgpLog) WithAttrs(as []slog.Attr) slog.Handler {
	scope := h.scope
	for _, a := range as {
		scope += fmt.Sprintf("%s=%v ", a.Key, a.Value)
	}
	return &gobgpLog{next: h.next.WithAttrs(as), stopping: h.stopping, repeats: h.repeats, scope: scope}
}

func (h *gobgpLog) WithGroup(name string) slog.Handler {
	return &gobgpLog{next: h.next.WithGroup(name), stopping: h.stopping, repeats: h.repeats, scope: h.scope + name + "."}
}
