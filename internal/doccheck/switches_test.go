package doccheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

// TestSwitchSnippetsParse: the FRR and BIRD configurations of the operator
// guide's "Switch side" are accepted by the FRR and BIRD this project tests
// with (vtysh --dryrun, bird -p: parse and check, no daemon started).
func TestSwitchSnippetsParse(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "operator-guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, c := range []struct {
		heading, command string
		args             func(file string) []string
	}{
		{"### FRR", "vtysh", func(f string) []string { return []string{"--dryrun", "-f", f} }},
		{"### BIRD 2", "bird", func(f string) []string { return []string{"-p", "-c", f} }},
	} {
		t.Run(c.command, func(t *testing.T) {
			bin := testutil.RequireCommand(t, c.command)
			snippet := firstBlockAfter(t, text, c.heading)
			f := filepath.Join(t.TempDir(), "switch.conf")
			if err := os.WriteFile(f, []byte(snippet), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, c.args(f)...).CombinedOutput(); err != nil {
				t.Errorf("docs/operator-guide.md, %s: %s refuses the snippet: %v\n%s", c.heading, c.command, err, out)
			}
		})
	}
}

// firstBlockAfter returns the first fenced code block after heading.
func firstBlockAfter(t *testing.T, text, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(text, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("no %q heading", heading)
	}
	_, rest, ok = strings.Cut(rest, "```\n")
	if !ok {
		t.Fatalf("no code block after %q", heading)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("unclosed code block after %q", heading)
	}
	return block
}
