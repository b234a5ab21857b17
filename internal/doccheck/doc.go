// Package doccheck finds what the README and docs/ name — configuration
// keys, airctl commands, flags of aird and airctl — so tests can fail when
// a document names one that does not exist (cmd/aird, cmd/airctl and this
// package's own test, which also holds docs/configuration.md's key tables
// and the schema to each other, both ways). Its tests also try what the
// key tables claim against the parser: each default written as a value,
// each integer or duration range (both bounds taken, one step beyond
// refused at the key) and each list of allowed strings.
package doccheck
