package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoPath is a code span naming a file or directory of the repository.
var repoPath = regexp.MustCompile(`^(cmd|internal|bpf|lb|bgp|ipam|router|configs|systemd|integration|bench|docs|packaging|\.ci)(/[A-Za-z0-9_./-]*)?$`)

// TestDocsNameExistingFiles: every repository path a document writes as
// code (`bpf/pipeline.h`, `cmd/aird/checkconfig_test.go`) exists.
func TestDocsNameExistingFiles(t *testing.T) {
	refs, err := Refs(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range refs {
		if r.Block || !repoPath.MatchString(r.Text) || !strings.Contains(r.Text, "/") {
			continue
		}
		n++
		if _, err := os.Stat(filepath.Join(root, r.Text)); err != nil {
			t.Errorf("%s:%d: `%s` does not exist in the repository", r.File, r.Line, r.Text)
		}
	}
	if n < 20 {
		t.Errorf("only %d repository paths found in the documents: is the scanner broken?", n)
	}
}

// testName is a Go test, benchmark or fuzz target named in a document.
var testName = regexp.MustCompile(`\b((Test|Benchmark|Fuzz)[A-Z][A-Za-z0-9_]*)`)

// TestDocsNameExistingTests: every test, benchmark or fuzz target a
// document cites as evidence is a function of a _test.go file.
func TestDocsNameExistingTests(t *testing.T) {
	defined := map[string]bool{}
	funcDecl := regexp.MustCompile(`(?m)^func ((Test|Benchmark|Fuzz)[A-Za-z0-9_]*)\(`)
	eachRepoFile(t, func(p string) bool { return strings.HasSuffix(p, "_test.go") }, func(_, text string) {
		for _, m := range funcDecl.FindAllStringSubmatch(text, -1) {
			defined[m[1]] = true
		}
	})
	n := 0
	eachDocumentLine(t, func(f string, line int, text string) {
		for _, m := range testName.FindAllStringSubmatch(text, -1) {
			n++
			if !defined[m[1]] {
				t.Errorf("%s:%d: cites %s, which no _test.go file defines", f, line, m[1])
			}
		}
	})
	if n < 20 {
		t.Errorf("only %d tests cited in the documents: is the scanner broken?", n)
	}
}

// TestReadmeLayoutNamesEveryDirectory: the README's Layout section names
// every top-level directory of the repository.
func TestReadmeLayoutNamesEveryDirectory(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(b), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "bin" || e.Name() == "dist" {
			continue // hidden, or build output (.gitignore)
		}
		if !strings.Contains(layout, "`"+e.Name()+"/`") {
			t.Errorf("README.md, Layout: the directory %s/ is not named", e.Name())
		}
	}
}

// airdEnv is an environment variable of aird, its tests or its tools.
var airdEnv = regexp.MustCompile(`\bAIRD_[A-Z0-9_]*[A-Z0-9]\b`)

// TestDocsNameExistingEnv: every AIRD_… environment variable a document
// names is read somewhere in the code or scripts.
func TestDocsNameExistingEnv(t *testing.T) {
	used := map[string]bool{}
	code := func(p string) bool {
		return strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".sh") || filepath.Base(p) == "Makefile" ||
			strings.HasPrefix(p, filepath.Join(root, ".ci"))
	}
	eachRepoFile(t, code, func(_, text string) {
		for _, m := range airdEnv.FindAllString(text, -1) {
			used[m] = true
		}
	})
	n := 0
	eachDocumentLine(t, func(f string, line int, text string) {
		for _, m := range airdEnv.FindAllString(text, -1) {
			n++
			if !used[m] {
				t.Errorf("%s:%d: names %s, which no code or script reads", f, line, m)
			}
		}
	})
	if n < 3 {
		t.Errorf("only %d AIRD_ variables found in the documents: is the scanner broken?", n)
	}
}

// TestDocsNameExistingMakeTargets: every `make TARGET` of the documents is
// a target of the Makefile.
func TestDocsNameExistingMakeTargets(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(b), -1) {
		targets[m[1]] = true
	}
	refs, err := Refs(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range refs {
		args, ok := Invocation(r, "make")
		if !ok {
			continue
		}
		for _, a := range args {
			if strings.Contains(a, "=") || strings.HasPrefix(a, "-") {
				continue // a variable (KEEP=1) or a flag
			}
			n++
			if !targets[a] {
				t.Errorf("%s:%d: `%s`: the Makefile has no target %s", r.File, r.Line, r.Text, a)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d make targets found in the documents: is the scanner broken?", n)
	}
}
