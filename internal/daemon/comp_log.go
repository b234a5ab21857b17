package daemon

import (
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/logging"
)

// logComponent follows [log]: level and format change live.
type logComponent struct {
	l *logging.Logger
}

func (c *logComponent) name() string           { return "log" }
func (c *logComponent) sections() []string     { return []string{config.SectionLog} }
func (c *logComponent) close(stopIntent) error { return nil }

func (c *logComponent) apply(old, new *config.Config) error {
	prevLevel := c.l.Level()
	if err := c.l.SetLevel(new.Log.Level); err != nil {
		return err
	}
	if err := c.l.SetFormat(new.Log.Format); err != nil {
		_ = c.l.SetLevel(prevLevel)
		return err
	}
	return nil
}
