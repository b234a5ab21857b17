// Package logging builds aird's slog logger: text or JSON lines on stderr, or,
// under systemd, structured journald entries with priorities (journal.go);
// level and format can change while the daemon runs.
package logging
