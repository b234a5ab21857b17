package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionTargetsExist: every command and flag given a dynamic
// completion still exists, and has it.
func TestCompletionTargetsExist(t *testing.T) {
	c := &cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	root := c.rootCommand()
	for path := range c.argCompletions() {
		cmd, err := findCommand(root, path)
		if err != nil {
			t.Error(err)
			continue
		}
		if cmd.ValidArgsFunction == nil {
			t.Errorf("%s: no argument completion", path)
		}
	}
	for path, flags := range c.flagCompletions() {
		cmd, err := findCommand(root, path)
		if err != nil {
			t.Error(err)
			continue
		}
		for name := range flags {
			if _, ok := cmd.GetFlagCompletionFunc(name); !ok {
				t.Errorf("%s --%s: no completion", path, name)
			}
		}
	}
}

// Without a running aird the dynamic completions are empty, quickly, and
// never offer files.
func TestCompletionWithoutDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"lb", "backends", ""},
		{"lb", "drain", ""},
		{"bgp", "neighbors", ""},
		{"bgp", "routes", "received", "--neighbor", ""},
	} {
		out, _, code := runCLI(append([]string{"__complete", "--socket", sock}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 1 || lines[0] != ":4" {
			t.Errorf("__complete %v: exit %d, %q; want no completion and :4 (no file completion)", args, code, out)
		}
	}
	out, _, _ := runCLI("__complete", "log-level", "w")
	if !strings.HasPrefix(out, "warn\n") {
		t.Errorf("__complete log-level w: %q", out)
	}
}
