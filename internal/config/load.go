package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// File is a loaded, valid configuration together with where it came from.
type File struct {
	Path   string
	Digest string // sha256 of the file's bytes, hex
	*Config
}

// Load reads, decodes and validates the file at path. On failure the error
// is an Errors value naming every problem with file:line:column and key, or
// a plain error when the file cannot be read.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &File{Path: path, Digest: hex.EncodeToString(sum[:]), Config: cfg}, nil
}

// Parse decodes and validates data; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	r := &reporter{file: name}
	// The TOML parser skips a byte order mark; skip it here too, so that the
	// position scanner sees the same text and columns on line 1 agree.
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if rest, ok := bytes.CutPrefix(data, []byte(bom)); ok {
			data = rest
			break
		}
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, Errors{syntaxError(name, data, err)}
	}
	r.pos = scanPositions(data)
	cfg := Default()
	(&decoder{r: r}).decode("", raw, reflect.ValueOf(cfg).Elem())
	for _, e := range r.errs {
		r.shadow(e.Key) // its value is unknown: later checks of it would mislead
	}
	decodeErrs := len(r.errs)
	host, _ := os.Hostname()
	cfg.finish(host)
	validate(r, cfg)
	r.errs = dropShadowed(r.errs, decodeErrs, r.shadowed)
	if err := r.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// syntaxError converts the TOML parser's error into an Error.
func syntaxError(name string, data []byte, err error) *Error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{File: name, Msg: err.Error()}
	}
	msg := pe.Message
	if pe.Usage != "" {
		msg += " (" + strings.TrimSpace(strings.SplitN(pe.Usage, "\n", 2)[0]) + ")"
	}
	line, col := pe.Position.Line, pe.Position.Col
	// The parser's column is one line off when the error starts a line
	// (it reports column len(previous line)+2): recount it from the byte
	// offset when that offset agrees with the reported line.
	if start := pe.Position.Start; start > 0 && start <= len(data) && 1+bytes.Count(data[:start], []byte("\n")) == line {
		col = start - bytes.LastIndexByte(data[:start], '\n')
	}
	return &Error{File: name, Line: line, Col: col, Key: pe.LastKey, Msg: "syntax error: " + msg}
}

// dropShadowed removes semantic errors about keys that already failed to
// decode or were written under a wrong name (their value is unknown, so a
// second complaint would mislead). The first n errors are the decode errors.
func dropShadowed(errs Errors, n int, shadowed map[string]bool) Errors {
	out := errs[:n:n]
	for _, e := range errs[n:] {
		if !isShadowed(shadowed, e.Key) {
			out = append(out, e)
		}
	}
	return out
}

// isShadowed reports whether path or a table or array enclosing it is in
// the shadowed set.
func isShadowed(shadowed map[string]bool, path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if shadowed[p] {
			return true
		}
	}
	return false
}
