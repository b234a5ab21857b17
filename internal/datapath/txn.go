package datapath

import (
	"errors"
	"log/slog"
)

// txn makes SetUplinks all-or-nothing. Every reversible change registers
// its undo; changes that cannot be undone (detaching a link) are deferred
// to commit, which runs only after everything else succeeded.
type txn struct {
	log    *slog.Logger
	undos  []func() error
	finals []func()
}

// onUndo registers f to revert the change just made.
func (t *txn) onUndo(f func() error) { t.undos = append(t.undos, f) }

// onCommit registers f to run once the whole transaction succeeded.
func (t *txn) onCommit(f func()) { t.finals = append(t.finals, f) }

// rollback reverts the changes in reverse order. Failures are logged: the
// caller already returns the error that caused the rollback.
func (t *txn) rollback() {
	var errs []error
	for i := len(t.undos) - 1; i >= 0; i-- {
		if err := t.undos[i](); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.log.Error("rolling back uplink change left the datapath partly changed", "error", err)
	} else if len(t.undos) > 0 {
		t.log.Warn("uplink change failed and was rolled back", "steps", len(t.undos))
	}
	t.undos, t.finals = nil, nil
}

func (t *txn) commit() {
	for _, f := range t.finals {
		f()
	}
	t.undos, t.finals = nil, nil
}
