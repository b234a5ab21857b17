package doccheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// referenceRows are the key rows of docs/configuration.md's tables.
func referenceRows(t *testing.T) []DocumentedKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := ReferenceTables(string(b))
	return rows
}

// eachDocument calls doc with the text of every document.
func eachDocument(t *testing.T, doc func(file, text string)) {
	t.Helper()
	files, err := Documents(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		doc(f, string(b))
	}
}

// eachDocumentLine calls line for every line of every document.
func eachDocumentLine(t *testing.T, line func(file string, n int, text string)) {
	t.Helper()
	eachDocument(t, func(f, text string) {
		for i, l := range strings.Split(text, "\n") {
			line(f, i+1, l)
		}
	})
}

// eachRepoFile calls visit with the contents of every file of the
// repository (.git left out) for which keep says so.
func eachRepoFile(t *testing.T, keep func(path string) bool, visit func(path string, text string)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() || !keep(path) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		visit(path, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
