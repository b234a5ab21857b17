package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryReadCommandSpeaksJSON: every command that only reads (sends
// nothing but GETs) prints JSON with -o json (README: "-o json on every
// read command"). A fake aird answers every request with JSON null, which
// decodes into any answer type; commands that take an argument get one.
func TestEveryReadCommandSpeaksJSON(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "aird.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var methods []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("null\n"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	var leaves []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if s.Hidden || s.Name() == "help" || s.Name() == "completion" {
				continue
			}
			if s.HasSubCommands() {
				walk(s)
			} else {
				leaves = append(leaves, s)
			}
		}
	}
	walk((&cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}).rootCommand())
	reads := 0
	for _, leaf := range leaves {
		path := strings.Fields(leaf.CommandPath())[1:]
		if path[0] == "config" && path[1] == "check" {
			continue // reads a file, not the daemon (TestConfigCheck)
		}
		args := append(append([]string{"--socket", sock, "-o", "json"}, path...), placeholderArgs(leaf)...)
		mu.Lock()
		methods = nil
		mu.Unlock()
		out, errs, code := runCLI(args...)
		mu.Lock()
		onlyGET := len(methods) > 0
		for _, m := range methods {
			onlyGET = onlyGET && m == http.MethodGet
		}
		mu.Unlock()
		if !onlyGET {
			t.Logf("not a read: airctl %s (%v, exit %d)", strings.Join(args[4:], " "), methods, code)
			continue // changes state, or asks nothing of aird (version without a daemon answer)
		}
		reads++
		t.Logf("read: airctl %s", strings.Join(args[4:], " "))
		if code != 0 || !json.Valid([]byte(out)) {
			t.Errorf("airctl %s: exit %d, stdout is not JSON:\n%s%s", strings.Join(args[4:], " "), code, out, errs)
		}
	}
	if reads < 10 {
		t.Errorf("only %d read commands found: is the walk broken?", reads)
	}
}

// placeholderArgs are arguments for a command that needs them: one for
// each word of its usage line outside brackets (NAME, PEER), the first of
// alternatives (advertised|received) as written.
func placeholderArgs(c *cobra.Command) []string {
	var out []string
	depth := 0
	for _, w := range strings.Fields(c.Use)[1:] {
		opened := depth > 0 || strings.HasPrefix(w, "[")
		depth += strings.Count(w, "[") - strings.Count(w, "]")
		if opened || strings.HasPrefix(w, "-") {
			continue
		}
		if alt, _, ok := strings.Cut(w, "|"); ok {
			out = append(out, alt)
			continue
		}
		out = append(out, "x")
	}
	return out
}
