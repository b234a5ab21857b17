package config

import (
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
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, Errors{syntaxError(name, err)}
	}
	r.pos = scanPositions(data)
	cfg := Default()
	(&decoder{r: r}).decode("", raw, reflect.ValueOf(cfg).Elem())
	decodeErrs := len(r.errs)
	host, _ := os.Hostname()
	cfg.finish(host)
	validate(r, cfg)
	r.errs = dropShadowed(r.errs, decodeErrs)
	if err := r.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// syntaxError converts the TOML parser's error into an Error.
func syntaxError(name string, err error) *Error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{File: name, Msg: err.Error()}
	}
	msg := pe.Message
	if pe.Usage != "" {
		msg += " (" + strings.TrimSpace(strings.SplitN(pe.Usage, "\n", 2)[0]) + ")"
	}
	return &Error{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Key: pe.LastKey, Msg: "syntax error: " + msg}
}

// dropShadowed removes semantic errors about keys that already failed to
// decode (their value is unknown, so a second complaint would mislead). The
// first n errors are the decode errors.
func dropShadowed(errs Errors, n int) Errors {
	bad := map[string]bool{}
	for _, e := range errs[:n] {
		bad[e.Key] = true
	}
	out := errs[:n:n]
	for _, e := range errs[n:] {
		shadowed := false
		for p := e.Key; p != ""; p = parentPath(p) {
			if bad[p] {
				shadowed = true
				break
			}
		}
		if !shadowed {
			out = append(out, e)
		}
	}
	return out
}
