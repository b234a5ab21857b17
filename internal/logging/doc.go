// Package logging builds aird's slog logger: text on stderr for journald (or
// JSON), with a level and a format that can change while the daemon runs.
package logging
