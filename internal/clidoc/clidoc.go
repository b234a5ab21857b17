package clidoc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Options say where and for which version the files are written.
type Options struct {
	// Dir receives man/man8/*.8 (and man/man5/*.5), and
	// completions/bash/NAME, completions/zsh/_NAME, completions/fish/NAME.fish.
	Dir string
	// Version is printed in the pages' footer ("aird VERSION").
	Version string
	// Date of the pages; the zero time means SOURCE_DATE_EPOCH, else now.
	Date time.Time
}

func (o Options) validate() error {
	if o.Dir == "" {
		return fmt.Errorf("clidoc: no output directory")
	}
	return nil
}

func (o Options) date() time.Time {
	if !o.Date.IsZero() {
		return o.Date.UTC()
	}
	if s, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(s, 0).UTC()
	}
	return time.Now().UTC()
}

// WriteCommand writes the section 8 man pages of root and its visible
// subcommands, and root's shell completions.
func WriteCommand(root *cobra.Command, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	manDir := filepath.Join(o.Dir, "man", "man8")
	if err := os.MkdirAll(manDir, 0o755); err != nil {
		return fmt.Errorf("clidoc: %w", err)
	}
	date := o.date()
	root.DisableAutoGenTag = true
	hdr := &doc.GenManHeader{Section: "8", Date: &date, Source: "aird " + o.Version, Manual: "aird manual"}
	if err := doc.GenManTree(root, hdr, manDir); err != nil {
		return fmt.Errorf("clidoc: man pages of %s: %w", root.Name(), err)
	}
	if err := addTblMarker(manDir); err != nil {
		return err
	}
	return writeCompletions(root, o.Dir)
}

func writeCompletions(root *cobra.Command, dir string) error {
	name := root.Name()
	for _, c := range []struct {
		shell, file string
		gen         func(*bytes.Buffer) error
	}{
		{"bash", name, func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) }},
		{"zsh", "_" + name, func(b *bytes.Buffer) error { return root.GenZshCompletion(b) }},
		{"fish", name + ".fish", func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) }},
	} {
		var b bytes.Buffer
		if err := c.gen(&b); err != nil {
			return fmt.Errorf("clidoc: %s completion of %s: %w", c.shell, name, err)
		}
		d := filepath.Join(dir, "completions", c.shell)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("clidoc: %w", err)
		}
		if err := os.WriteFile(filepath.Join(d, c.file), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("clidoc: %w", err)
		}
	}
	return nil
}

// addTblMarker starts every page that has a table with the '\" t line that
// tells man(1) to run tbl.
func addTblMarker(dir string) error {
	pages, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return fmt.Errorf("clidoc: %w", err)
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("clidoc: %w", err)
		}
		if bytes.Contains(b, []byte("\n.TS\n")) && !bytes.HasPrefix(b, []byte(`'\" t`)) {
			if err := os.WriteFile(p, append([]byte("'\\\" t\n"), b...), 0o644); err != nil {
				return fmt.Errorf("clidoc: %w", err)
			}
		}
	}
	return nil
}

// ConfigPage renders the configuration reference (docs/configuration.md)
// as aird.toml(5) into Dir/man/man5/aird.toml.5. Its first heading becomes
// the NAME, its introduction the DESCRIPTION; links lose their targets.
func ConfigPage(markdown []byte, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	page, err := configManPage(markdown, o.Version, o.date())
	if err != nil {
		return err
	}
	dir := filepath.Join(o.Dir, "man", "man5")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("clidoc: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "aird.toml.5"), page, 0o644); err != nil {
		return fmt.Errorf("clidoc: %w", err)
	}
	return nil
}

var (
	mdLink    = regexp.MustCompile(`\[([^\]]+)\]\([^)]+\)`)
	firstHead = regexp.MustCompile(`(?m)\A# .*\n`)
)

func configManPage(markdown []byte, version string, date time.Time) ([]byte, error) {
	if !firstHead.Match(markdown) {
		return nil, fmt.Errorf("clidoc: the configuration reference does not start with a '# ' title")
	}
	body := firstHead.ReplaceAll(markdown, nil)
	// Links to other documents or anchors mean nothing in a man page.
	body = mdLink.ReplaceAll(body, []byte("$1"))
	body = []byte(tablesToLists(string(body)))
	var b bytes.Buffer
	fmt.Fprintf(&b, "# AIRD.TOML 5 %q %q %q\n\n", date.Format("2006-01-02"), "aird "+version, "aird manual")
	b.WriteString("# NAME\n\naird.toml - configuration file of aird, the node network daemon\n\n")
	b.WriteString("# SYNOPSIS\n\n/etc/aird/aird.toml\n\n")
	b.WriteString("# DESCRIPTION\n\n")
	b.Write(body)
	b.WriteString("\n# SEE ALSO\n\naird(8), airctl(8), airctl-config-check(8), airctl-config-show(8)\n")
	page := md2man.Render(b.Bytes())
	if bytes.Contains(page, []byte("\n.TS\n")) {
		page = append([]byte("'\\\" t\n"), page...)
	}
	return page, nil
}

// ManLong replaces a command's long help while the pages are generated,
// so the man page can have sections of its own (markdown: "# FILES" …)
// while the terminal help stays plain.
func ManLong(cmd *cobra.Command, long string) (restore func()) {
	old := cmd.Long
	cmd.Long = long
	return func() { cmd.Long = old }
}
