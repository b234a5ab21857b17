package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/doccheck"
)

// TestDocsNameOnlyExistingCommands: every `airctl …` in the README and
// docs/ names commands that exist, with flags they have.
func TestDocsNameOnlyExistingCommands(t *testing.T) {
	c := &cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	root := c.rootCommand()
	root.InitDefaultCompletionCmd() // cobra adds `completion` at Execute
	refs, err := doccheck.Refs("../..")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range refs {
		args, ok := doccheck.Invocation(r, "airctl")
		if !ok {
			continue
		}
		n++
		if msg := checkInvocation(root, args); msg != "" {
			t.Errorf("%s:%d: `%s`: %s", r.File, r.Line, r.Text, msg)
		}
	}
	if n < 20 {
		t.Errorf("only %d airctl command lines found in the documents: is the scanner broken?", n)
	}
}

// checkInvocation resolves the command words of args and checks its flags;
// it returns what is wrong, or "".
func checkInvocation(root *cobra.Command, args []string) string {
	cmd := root
	i := 0
	for ; i < len(args); i++ {
		w := args[i]
		if strings.HasPrefix(w, "-") || !isWord(w) {
			break
		}
		sub := findSub(cmd, w)
		if sub == nil {
			if cmd.HasSubCommands() && !cmd.Runnable() {
				return "no command " + strings.TrimSpace(cmd.CommandPath()+" "+w)
			}
			break // an argument
		}
		cmd = sub
	}
	for _, w := range args[i:] {
		if !strings.HasPrefix(w, "-") || w == "-" || w == "--" || !isFlagWord(w) {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
		var found bool
		if strings.HasPrefix(w, "--") {
			found = cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil
		} else {
			found = cmd.Flags().ShorthandLookup(name) != nil || cmd.InheritedFlags().ShorthandLookup(name) != nil
		}
		if !found {
			return cmd.CommandPath() + " has no flag " + w
		}
	}
	return ""
}

// isWord: a literal command word, not a placeholder (FILE, [PEER], …).
func isWord(w string) bool {
	for _, r := range w {
		if !(r >= 'a' && r <= 'z' || r == '-') {
			return false
		}
	}
	return w != ""
}

func isFlagWord(w string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
	return isWord(name) || len(name) == 1
}

func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, s := range cmd.Commands() {
		if s.Name() == name || s.HasAlias(name) {
			return s
		}
	}
	return nil
}
