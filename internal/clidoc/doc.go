// Package clidoc generates what the Debian package ships besides the
// binaries: man pages of the cobra command trees (aird(8), airctl(8) and a
// page per airctl subcommand), bash, zsh and fish completions, and
// aird.toml(5), rendered from docs/configuration.md, so the man page and
// the configuration reference are one text.
package clidoc
