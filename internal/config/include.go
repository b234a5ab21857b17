package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Limits of the include key. Each included file is also held to the limits
// of one file (MaxFileSize, MaxDepth, MaxKeyLen, MaxItems, MaxScalars).
const (
	// MaxIncludePatterns bounds the patterns of include.
	MaxIncludePatterns = 64
	// MaxIncludeFiles bounds the files the patterns match, in all.
	MaxIncludeFiles = 4096
	// MaxIncludeBytes bounds the size of the included files together
	// (256 MiB), so that a load, however the files are laid out, takes
	// bounded time and memory.
	MaxIncludeBytes = 256 << 20
)

// include checks the include key of the main file: at most
// MaxIncludePatterns patterns, each non-empty and a valid glob.
func (v *validator) include() {
	if len(v.c.Include) > MaxIncludePatterns {
		v.errf(indexPath("include", MaxIncludePatterns), "%d patterns: include holds at most %d", len(v.c.Include), MaxIncludePatterns)
	}
	for i, p := range v.c.Include {
		path := indexPath("include", i)
		switch _, err := filepath.Match(p, ""); {
		case p == "":
			v.errf(path, "empty pattern: name a file or a glob such as \"services.d/*.toml\"")
		case err != nil:
			v.errf(path, "invalid glob %q: %v", p, err)
		}
	}
}

// includedFiles expands the include patterns of the main file at path:
// relative patterns are taken from the main file's directory; each
// pattern's matches come in lexical order, a file matched twice counts
// once. A pattern without glob characters must name an existing file; a
// glob may match nothing (an empty services.d is a configuration). Errors
// name the main file, the include entry and the limit.
func includedFiles(path string, patterns []string) ([]string, error) {
	dir := filepath.Dir(path)
	self, _ := filepath.Abs(path)
	var out []string
	seen := map[string]bool{}
	var errs Errors
	for i, p := range patterns {
		key := indexPath("include", i)
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			errs = append(errs, &Error{File: path, Key: key, Msg: fmt.Sprintf("invalid glob %q: %v", p, err)})
			continue
		}
		if !hasMeta(p) && len(matches) == 0 {
			if _, err := os.Lstat(p); err != nil {
				errs = append(errs, &Error{File: path, Key: key, Msg: fmt.Sprintf("included file %s: %v", p, unwrapPathErr(err))})
				continue
			}
			matches = []string{p}
		}
		slices.Sort(matches)
		for _, m := range matches {
			abs, _ := filepath.Abs(m)
			if abs == self {
				errs = append(errs, &Error{File: path, Key: key, Msg: fmt.Sprintf("pattern %q matches this file itself: an included file holds [[services]] only", patterns[i])})
				continue
			}
			if seen[abs] {
				continue
			}
			seen[abs] = true
			if len(out) == MaxIncludeFiles {
				errs = append(errs, &Error{File: path, Key: key, Msg: fmt.Sprintf("the include patterns match more than %d files", MaxIncludeFiles)})
				return nil, errs
			}
			out = append(out, m)
		}
	}
	if errs != nil {
		return nil, errs
	}
	return out, nil
}

// hasMeta reports whether p holds glob characters.
func hasMeta(p string) bool {
	for i := range len(p) {
		switch p[i] {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
