package testutil

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// HostileConfig is a configuration file made to exhaust whatever reads it
// (issue 11): each must be refused at once, in bounded time and memory.
type HostileConfig struct {
	Name string
	Want string                       // in the error aird reports
	Make func(t testing.TB, p string) // creates it at path p
}

// HostileConfigs returns the files of issue 11: a valid 100 KB file of
// 50,000 nested arrays (it took a quadratic scanner to gigabytes), the
// same with inline tables and dotted keys, a 40 MB file of valid TOML,
// /dev/zero (through a symlink), a FIFO with no writer and a directory.
func HostileConfigs() []HostileConfig {
	write := func(content string) func(testing.TB, string) {
		return func(t testing.TB, p string) {
			t.Helper()
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return []HostileConfig{
		{"nested arrays", "nested more than 16 levels deep",
			write("a = " + strings.Repeat("[", 50000) + strings.Repeat("]", 50000) + "\n")},
		{"nested inline tables", "nested more than 16 levels deep",
			write("a = " + strings.Repeat("{b=", 25000) + "1" + strings.Repeat("}", 25000) + "\n")},
		{"dotted key", "nested more than 16 levels deep",
			write(strings.Repeat("a.", 50000) + "a = 1\n")},
		{"40 MB file", "the file is 41943040 bytes; a configuration file may be at most 33554432 bytes (32 MiB)",
			func(t testing.TB, p string) { // written in pieces: the test's own memory counts in the child's peak RSS
				t.Helper()
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				line := []byte("#" + strings.Repeat("x", 1<<20-2) + "\n")
				for range 40 {
					if _, err := f.Write(line); err != nil {
						t.Fatal(err)
					}
				}
			}},
		{"/dev/zero", "a character device, not a regular file", func(t testing.TB, p string) {
			t.Helper()
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"FIFO", "a FIFO (named pipe), not a regular file", func(t testing.TB, p string) {
			t.Helper()
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", "a directory, not a regular file", func(t testing.TB, p string) {
			t.Helper()
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
}
