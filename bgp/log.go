package bgp

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// gobgpLog hands GoBGP's records to the speaker's logger, tagged
// component=gobgp. While the speaker stops it drops the one error GoBGP
// logs when its Stop finds BGP already stopped (we stop BGP first, without
// CEASE, then call Stop to end its BFD and gRPC servers).
type gobgpLog struct {
	next     slog.Handler
	stopping *atomic.Bool
}

func newGoBGPLogger(l *slog.Logger, stopping *atomic.Bool) *slog.Logger {
	return slog.New(&gobgpLog{next: l.Handler().WithAttrs([]slog.Attr{slog.String("component", "gobgp")}), stopping: stopping})
}

func (h *gobgpLog) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *gobgpLog) Handle(ctx context.Context, r slog.Record) error {
	if h.stopping.Load() && r.Message == "failed to stop BGP server" {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *gobgpLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &gobgpLog{next: h.next.WithAttrs(as), stopping: h.stopping}
}

func (h *gobgpLog) WithGroup(name string) slog.Handler {
	return &gobgpLog{next: h.next.WithGroup(name), stopping: h.stopping}
}
