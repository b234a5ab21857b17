package clidoc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func TestTablesToLists(t *testing.T) {
	md := "intro\n\n| key | type | meaning |\n|---|---|---|\n| `a` | int | the a \\| b |\n| `b` | string | longer text here |\n\n```\n| not | a table |\n|---|---|\n```\n"
	got := tablesToLists(md)
	for _, want := range []string{"**`a`**\n: the a | b; *type*: int\n", "**`b`**\n: longer text here; *type*: string\n", "```\n| not | a table |\n|---|---|\n```"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

// TestPagesRender: the configuration reference and a command tree become
// man pages that man(1) formats without warnings.
func TestPagesRender(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Version: "v1.2.3", Date: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	md, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ConfigPage(md, o); err != nil {
		t.Fatal(err)
	}
	root := &cobra.Command{Use: "demo", Short: "a demo"}
	root.AddCommand(&cobra.Command{Use: "sub", Short: "a sub command", Run: func(*cobra.Command, []string) {}})
	if err := WriteCommand(root, o); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"man/man5/aird.toml.5", "man/man8/demo.8", "man/man8/demo-sub.8",
		"completions/bash/demo", "completions/zsh/_demo", "completions/fish/demo.fish"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	page, _ := os.ReadFile(filepath.Join(dir, "man/man5/aird.toml.5"))
	if !strings.Contains(string(page), `.TH AIRD.TOML 5 "2026-11-26" "aird v1.2.3"`) {
		t.Errorf("aird.toml.5 header:\n%.300s", page)
	}
	if _, err := exec.LookPath("man"); err != nil {
		t.Skipf("no man(1) to format the pages: %v", err)
	}
	var stderr strings.Builder
	cmd := exec.Command("man", "--warnings", "-l", filepath.Join(dir, "man/man5/aird.toml.5"))
	cmd.Env = append(os.Environ(), "MANWIDTH=80")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	text := string(out)
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("man -l aird.toml.5: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"NAME", "aird.toml - configuration file of aird", "router-id", "max-prefixes", "SEE ALSO"} {
		if !strings.Contains(text, want) {
			t.Errorf("formatted aird.toml(5) lacks %q", want)
		}
	}
}
