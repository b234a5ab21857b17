// Package config owns aird's configuration: the TOML schema, its strict
// decoding and its validation.
//
// Loading is strict and exact. A file is first parsed as TOML (syntax errors
// carry file:line:column), then decoded into the schema by this package's own
// decoder, which matches keys case-sensitively, rejects unknown or mis-cased
// keys and collects every type error instead of stopping at the first. A
// position index built from the source maps each key path (for example
// "bgp.peers[1].asn") to the line and column where it is written, so decode
// and semantic errors name file:line:column and the key. Validation then
// checks the meaning of the whole file (overlapping pools, VIPs outside their
// pools, reserved ASNs, duplicate peers, …) and reports all problems at once.
//
// A Config is immutable once loaded: the daemon swaps whole configurations on
// reload and asks Diff which sections changed.
package config
