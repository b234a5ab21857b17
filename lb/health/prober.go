package health

import (
	"context"
	"sync"
	"time"
)

// prober checks one target until stopped.
type prober struct {
	c      *Checker
	spec   Spec
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	st     Status
	streak int // consecutive results contradicting the current state
}

func newProber(c *Checker, s Spec, st Status) *prober {
	ctx, cancel := context.WithCancel(c.ctx)
	st.Via, st.Fallback = s.Via, s.Fallback
	return &prober{c: c, spec: s, ctx: ctx, cancel: cancel, done: make(chan struct{}), st: st}
}

func (p *prober) stop() {
	p.cancel()
	<-p.done
}

func (p *prober) stopped() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *prober) status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

func (p *prober) run() {
	defer close(p.done)
	if p.spec.Type == TypeNone {
		p.record(nil) // no check: the target is healthy by configuration
		<-p.ctx.Done()
		return
	}
	next := time.Now().Add(jitter(p.spec, p.spec.Interval))
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-timer.C:
		}
		err := probe(p.ctx, p.c.opts.Dialer, p.spec)
		if p.ctx.Err() != nil {
			return // stopped mid-probe: the result says nothing
		}
		p.record(err)
		next = nextProbe(next, time.Now(), p.spec.Interval)
		timer.Reset(time.Until(next))
	}
}

// nextProbe is when the probe after the one due at last is due: an
// interval after last (a fixed rate, not an interval after the probe
// ended, so a dead target is out within fall x interval plus the last
// probe's own time), skipping the slots a long probe overran.
func nextProbe(last, now time.Time, interval time.Duration) time.Time {
	next := last.Add(interval)
	for !next.After(now) {
		next = next.Add(interval)
	}
	return next
}

// record applies one probe result to the rise/fall state machine. An
// unknown target is decided by its first success, or by `fall`
// consecutive failures: the data plane keeps the earlier process's view
// meanwhile, so one failed probe right after a restart (a probe path not
// ready yet) must not take a backend out that was serving - it takes the
// failures that would take a healthy one out.
func (p *prober) record(err error) {
	p.mu.Lock()
	p.st.Checks++
	ok := err == nil
	if !ok {
		p.st.Failures++
		p.st.LastError = err.Error()
	}
	var ev *Event
	if !p.st.Known {
		if !ok && p.spec.Type != TypeNone {
			p.streak++
		}
		if ok || p.streak >= p.spec.Fall || p.spec.Type == TypeNone {
			p.st.Known, p.st.Healthy, p.st.Since, p.streak = true, ok, time.Now(), 0
			ev = &Event{Spec: p.spec, Healthy: ok}
			if !ok {
				ev.Reason = err.Error()
			}
		}
	} else if ok == p.st.Healthy {
		p.streak = 0
	} else {
		p.streak++
		need := p.spec.Fall
		if ok {
			need = p.spec.Rise
		}
		if p.streak >= need || p.spec.Type == TypeNone {
			p.st.Healthy, p.st.Since, p.streak = ok, time.Now(), 0
			ev = &Event{Spec: p.spec, Healthy: ok}
			if !ok {
				ev.Reason = err.Error()
			}
		}
	}
	p.mu.Unlock()
	if ev != nil {
		p.c.opts.Logger.Info("backend health changed", "target", p.spec.Dest, "mark", p.spec.Mark, "healthy", ev.Healthy, "reason", ev.Reason)
		select {
		case p.c.opts.Events <- *ev:
		case <-p.ctx.Done():
		}
	}
}
