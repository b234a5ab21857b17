package daemon

import (
	"slices"

	"github.com/aird-net/aird/internal/config"
)

// component is one part of the daemon that follows the configuration.
type component interface {
	name() string
	// sections lists the configuration sections the component follows; it
	// is asked to apply a reload only when one of them changed.
	sections() []string
	// apply moves the component from old to new (old is nil at start). It
	// must be all-or-nothing: on error the component still runs old.
	apply(old, new *config.Config) error
	// close releases what the component holds. The data plane always stays
	// in place for the next process; the intent says whether routes should
	// stay too (restart) or be withdrawn (stop).
	close(intent stopIntent) error
}

// affected reports whether any of c's sections is in changed.
func affected(c component, changed []string) bool {
	for _, s := range c.sections() {
		if slices.Contains(changed, s) {
			return true
		}
	}
	return false
}

// change is what a reload changes: the sections, and which services.
type change struct {
	sections []string
	services *config.ServicesDelta
}

// only reports whether, of the sections c follows, section alone changed.
func (ch change) only(c component, section string) bool {
	for _, s := range c.sections() {
		if s != section && slices.Contains(ch.sections, s) {
			return false
		}
	}
	return true
}

// changeApplier is a component that applies a reload in proportion to
// what it changes. applyChange has apply's contract; a rollback and the
// start go through apply.
type changeApplier interface {
	applyChange(old, new *config.Config, ch change) error
}
