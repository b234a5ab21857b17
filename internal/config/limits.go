package config

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Limits of a configuration file. A file beyond one of them is rejected
// before the TOML parser reads it, with an error that names the limit, so
// that no file, however written, makes a load take more than bounded time
// and memory (docs/configuration.md, "Limits").
const (
	// MaxFileSize is the largest file aird reads, in bytes (32 MiB): room
	// for a service per vip id of the default data plane (65,536), or for
	// 10,000 services of 100 backends each written as address strings.
	MaxFileSize = 32 << 20
	// MaxDepth bounds nesting: the key names, arrays and inline tables
	// from the top of the file down to a value. The deepest key of the
	// schema, written entirely inline, needs 9.
	MaxDepth = 16
	// MaxKeyLen bounds one key name (a part between dots), in bytes.
	MaxKeyLen = 128
	// MaxItems bounds the key names (each part of a dotted key or table
	// header counts) and array elements of a file.
	MaxItems = 1 << 18
	// MaxScalars bounds the plain elements of arrays (strings, numbers,
	// booleans, dates: elements that are not arrays or inline tables).
	// They cost the parser far less than a key or a table: room for
	// 10,000 services of 100 backends each written as addresses.
	MaxScalars = 1 << 21
	// MaxPoolPrefixes bounds the prefixes of [[ipam.pools]] (in all) and
	// ipam.pod-prefixes: each list is checked for overlaps pairwise.
	MaxPoolPrefixes = 4096
	// MaxErrors is how many errors are listed for one file; the rest are
	// counted in a last entry.
	MaxErrors = 100
)

// readFile reads a configuration file, which must be a regular file of at
// most MaxFileSize bytes. A FIFO, device, socket or directory is refused
// without a read (the open does not wait for a FIFO's writer), and so is a
// file above the limit, by its size or by what it yields.
func readFile(path string) ([]byte, error) { return readFileInto(path, nil) }

// readFileInto is readFile reading into buf when it has room for the
// file (the Loader's spare buffer: a 16 MB file read into new memory at
// every reload brings the garbage collector round sooner).
func readFileInto(path string, buf []byte) ([]byte, error) {
	// Stat first: opening a socket fails, and opening a device can act.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, Errors{notRegular(path, fi.Mode())}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat() // what was opened, if the path changed since
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, Errors{notRegular(path, fi.Mode())}
	}
	if fi.Size() > MaxFileSize {
		return nil, Errors{tooLarge(path, fmt.Sprintf("%d bytes", fi.Size()))}
	}
	// Sized from the stat: io.ReadAll would grow a 16 MB file's buffer
	// by doubling, zeroing each copy (0.2 s of a restart at 10,000 services).
	if cap(buf) < int(fi.Size())+bytes.MinRead {
		buf = make([]byte, 0, int(fi.Size())+bytes.MinRead)
	}
	b := bytes.NewBuffer(buf[:0])
	if _, err := b.ReadFrom(io.LimitReader(f, MaxFileSize+1)); err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	data := b.Bytes()
	if len(data) > MaxFileSize { // it grew while read
		return nil, Errors{tooLarge(path, fmt.Sprintf("more than %d bytes", MaxFileSize))}
	}
	return data, nil
}

// tooLarge is the error for a file above MaxFileSize.
func tooLarge(name, size string) *Error {
	return &Error{File: name, Msg: fmt.Sprintf("the file is %s; a configuration file may be at most %d bytes (32 MiB)", size, MaxFileSize)}
}

func notRegular(name string, m fs.FileMode) *Error {
	return &Error{File: name, Msg: fmt.Sprintf("%s, not a regular file: a configuration file must be a regular file", fileKind(m))}
}

// fileKind names the type of a file that is not a regular file.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	default:
		return "a special file"
	}
}
