package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"
)

// File is a loaded, valid configuration together with where it came from.
type File struct {
	Path string
	// Digest is the sha256 of the file's bytes, hex; with included files,
	// of the main file's digest and each included file's path and digest.
	Digest string
	// Sources are the included files, in the order their services come.
	Sources []Source
	// Size is the main file's size in bytes.
	Size int64
	// Parsed is how many bytes this load parsed: the main file and the
	// included files it did not keep from the Loader's last load.
	Parsed int64
	// spans are where each file's services are among Services (the
	// Loader's merge; nil otherwise): DiffServices skips unchanged files.
	spans []span
	*Config
}

// Load reads, decodes and validates the file at path and the files its
// include key names. On failure the error is an Errors value naming every
// problem with file:line:column and key, or a plain error when a file
// cannot be read. The daemon loads through a Loader, which keeps what it
// parsed for the next load.
func Load(path string) (*File, error) {
	return new(Loader).Load(path)
}

// asErrors reports whether err is an Errors value, and sets es to it.
func asErrors(err error, es *Errors) bool { return errors.As(err, es) }

// Parse decodes and validates data; name is used in error messages. Data
// beyond the limits of a file (MaxFileSize, MaxDepth, MaxKeyLen, MaxItems)
// is rejected before it is parsed.
func Parse(name string, data []byte) (*Config, error) {
	cfg, _, err := parseFile(name, data)
	return cfg, err
}

// parseFile is Parse; it also returns where the file's table headers are
// (in data without its byte-order marks), which the Loader cuts it at.
func parseFile(name string, data []byte) (*Config, shaped, error) {
	sh, raw, err := parseBounded(name, data)
	if err != nil {
		return nil, sh, err
	}
	cfg, err := decodeConfig(name, sh.data, raw)
	return cfg, sh, err
}

// decodeConfig decodes and validates the parser's tree of data.
func decodeConfig(name string, data []byte, raw map[string]any) (*Config, error) {
	// A valid file is decoded once, without the position index: building
	// it costs as much as the rest of aird's work on a file of a million
	// backends, and only errors need it. A file with a problem is decoded
	// again from the same tree with positions, which reports every
	// problem at its file:line in file order.
	if cfg := build(&reporter{file: name, fast: true, raw: raw}, raw); cfg != nil {
		return cfg, nil
	}
	r := &reporter{file: name, pos: scanPositions(data)}
	cfg := build(r, raw)
	if err := r.err(); err != nil {
		return nil, err
	}
	return cfg, nil // the full pass is the reference, should the two ever disagree
}

// build decodes the TOML parser's tree into a configuration, fills the
// defaults and validates it, reporting problems through r. In the fast
// pass (r.fast) it returns nil at the first problem.
func build(r *reporter, raw map[string]any) *Config {
	cfg := Default()
	(&decoder{r: r}).decode("", raw, reflect.ValueOf(cfg).Elem())
	if r.fast && r.bad {
		return nil
	}
	r.checking = true
	host, _ := os.Hostname()
	cfg.finish(host)
	validate(r, cfg)
	if r.fast && r.bad {
		return nil
	}
	return cfg
}

// stripBOM removes byte order marks. The TOML parser skips one; removing
// them all here lets the parser and the position scanner see the same text,
// and columns on line 1 agree.
func stripBOM(data []byte) []byte {
	for {
		n := len(data)
		for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
			data = bytes.TrimPrefix(data, []byte(bom))
		}
		if len(data) == n {
			return data
		}
	}
}

// shaped is a file without its byte-order marks, and its table headers
// as the shape scan found them (nil when the scan stopped: the parser
// reports the problem).
type shaped struct {
	data           []byte
	headers        []shapeHeader
	items, scalars int // what the scan counted in all
	// rescanned: data is a later version of a file the scan of which
	// was kept (chunked.rescan); data[:prefix] and data[tail:] (which
	// was at tail-delta) are as they were.
	rescanned           bool
	prefix, tail, delta int
}

// shapeFile checks data against the limits of a file (MaxFileSize, and
// the shape limits checkShape applies).
func shapeFile(name string, data []byte) (shaped, error) {
	if len(data) > MaxFileSize {
		return shaped{}, Errors{tooLarge(name, fmt.Sprintf("%d bytes", len(data)))}
	}
	data = stripBOM(data)
	shape := scanShape(data)
	if e := shape.err; e != nil {
		e.File = name
		return shaped{}, Errors{e}
	}
	sh := shaped{data: data}
	if !shape.stopped {
		sh.headers, sh.items, sh.scalars = shape.headers, shape.items, shape.scalars
	}
	return sh, nil
}

// parseBounded checks data against the limits of a file (shapeFile) and
// runs the TOML parser on it, returning data without its byte-order mark
// with its headers, and the parser's tree.
func parseBounded(name string, data []byte) (shaped, map[string]any, error) {
	sh, err := shapeFile(name, data)
	if err != nil {
		return sh, nil, err
	}
	var raw map[string]any
	if sh.headers == nil { // the parser reports what stopped the scan
		raw, err = decodeTOML(sh.data)
	} else {
		raw, err = decodeFile(sh.data, sh.headers)
	}
	if err != nil {
		return shaped{}, nil, Errors{syntaxError(name, sh.data, err)}
	}
	return sh, raw, nil
}

// decodeTOML runs the TOML parser. It has internal consistency checks that
// panic; a file that trips one is reported as a syntax error rather than
// taking the daemon down.
func decodeTOML(data []byte) (raw map[string]any, err error) {
	return decodeTOMLString(string(data))
}

func decodeTOMLString(data string) (raw map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			raw, err = nil, fmt.Errorf("TOML parser failed: %v", r)
		}
	}()
	_, err = toml.Decode(data, &raw)
	return raw, err
}

// syntaxError converts the TOML parser's error into an Error.
func syntaxError(name string, data []byte, err error) *Error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{File: name, Msg: "syntax error: " + printable(err.Error())}
	}
	msg := pe.Message
	if pe.Usage != "" {
		msg += " (" + strings.TrimSpace(strings.SplitN(pe.Usage, "\n", 2)[0]) + ")"
	}
	// The parser's byte offset is exact, but the line and column it derives
	// are not always: the column is one line off when the error starts a
	// line, and errors at the end of the input can report line 0. Count
	// both from the offset.
	line, col := pe.Position.Line, pe.Position.Col
	if start := pe.Position.Start; start >= 0 && start <= len(data) {
		line = 1 + bytes.Count(data[:start], []byte("\n"))
		col = start - bytes.LastIndexByte(data[:start], '\n')
	}
	if line < 1 || col < 1 {
		line, col = 1, 1
	}
	return &Error{File: name, Line: line, Col: col, Key: pe.LastKey, Msg: "syntax error: " + printable(msg)}
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

// printable escapes control characters the parser copies from the input
// into its messages, so an error line stays one readable line.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) {
			b.WriteRune(r)
		} else {
			b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
		}
	}
	return b.String()
}
