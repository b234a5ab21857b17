package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Ref is one mention in a document: an inline code span, or a line of a
// fenced code block.
type Ref struct {
	File  string
	Line  int
	Text  string
	Block bool // a line of a fenced code block, not an inline span
}

// Documents are the operator-facing texts, relative to the module root.
func Documents(root string) ([]string, error) {
	files := []string{"README.md", "systemd/README.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	for _, m := range more {
		rel, err := filepath.Rel(root, m)
		if err != nil {
			return nil, err
		}
		files = append(files, rel)
	}
	return files, nil
}

var codeSpan = regexp.MustCompile("`([^`\n]+)`")

// Refs returns the code spans and code-block lines of the documents.
func Refs(root string) ([]Ref, error) {
	files, err := Documents(root)
	if err != nil {
		return nil, err
	}
	var refs []Ref
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		refs = append(refs, refsIn(f, string(b))...)
	}
	return refs, nil
}

func refsIn(file, text string) []Ref {
	var refs []Ref
	inBlock := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			refs = append(refs, Ref{file, i + 1, strings.TrimSpace(line), true})
			continue
		}
		for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
			refs = append(refs, Ref{file, i + 1, m[1], false})
		}
	}
	return refs
}

// Invocation cuts a mention of a command out of a ref: the words after
// name ("airctl", "aird") up to a shell operator or comment, with shell
// prompts ("$ ", "# ") and sudo before it dropped. ok is false when the ref
// is not a command line of that name.
func Invocation(r Ref, name string) (args []string, ok bool) {
	s := strings.TrimSpace(r.Text)
	for _, p := range []string{"$ ", "# ", "sudo "} {
		s = strings.TrimPrefix(s, p)
	}
	if !strings.HasPrefix(s, name+" ") && s != name {
		return nil, false
	}
	for _, w := range strings.Fields(s)[1:] {
		if w == "|" || w == "\\|" || w == ";" || w == "&&" || w == "||" || strings.HasPrefix(w, "#") ||
			strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>") {
			break
		}
		args = append(args, w)
	}
	return args, true
}
