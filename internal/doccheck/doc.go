// Package doccheck finds what the README and docs/ name — configuration
// keys, airctl commands, flags of aird and airctl — so tests can fail when
// a document names one that does not exist (cmd/aird, cmd/airctl and this
// package's own tests, which also hold docs/configuration.md's key tables
// and the schema to each other, both ways).
//
// This package's tests also try what the documents claim:
//   - the key tables against the parser: each default written as a value
//     (writing it changes nothing), each integer or duration range and
//     each string length (at the bound taken, one step beyond refused at
//     the key), each list of allowed strings;
//   - every repository path, cited test, AIRD_ environment variable and
//     make target exists;
//   - every ```toml example parses and sets only schema keys, and
//     configs/aird.toml names every key;
//   - a `$ airctl … -o json` example decodes into what the command prints;
//   - BIRD and FRR accept the operator guide's switch snippets.
//
// Metrics, data-plane counters and maps the documents name are checked
// against the code by internal/daemon's docs_test.go.
package doccheck
