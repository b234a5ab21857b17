package main

import (
	"io"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/doccheck"
)

// TestDocsNameOnlyExistingFlags: every `aird …` in the README and docs/
// uses flags aird has.
func TestDocsNameOnlyExistingFlags(t *testing.T) {
	root, _ := command(io.Discard, io.Discard)
	refs, err := doccheck.Refs("../..")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range refs {
		args, ok := doccheck.Invocation(r, "aird")
		if !ok {
			continue
		}
		n++
		for _, w := range args {
			if !strings.HasPrefix(w, "--") || w == "--" {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(w, "--"), "=")
			if root.Flags().Lookup(name) == nil {
				t.Errorf("%s:%d: `%s`: aird has no flag --%s", r.File, r.Line, r.Text, name)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d aird command lines found in the documents: is the scanner broken?", n)
	}
}
