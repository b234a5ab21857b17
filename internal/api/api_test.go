package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
)

// fakeBackend records what the server asked; the API layer is what is under
// test here (the daemon behind it is exercised end to end in integration/).
type fakeBackend struct {
	mu       sync.Mutex
	level    string
	reloadOK bool
}

func (f *fakeBackend) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{State: StateRunning, LogLevel: f.level}
}

func (f *fakeBackend) Reload(context.Context) ReloadResult {
	if f.reloadOK {
		return ReloadResult{OK: true, Generation: 2, Changed: []string{"log"}}
	}
	return ReloadResult{Generation: 1, Error: "configuration rejected", Errors: []*config.Error{{File: "a.toml", Line: 3, Col: 1, Key: "x", Msg: "bad"}}}
}

func (f *fakeBackend) Config() *config.Config { return config.Default() }

func (f *fakeBackend) SetLogLevel(l string) error {
	if l != "debug" && l != "info" {
		return errors.New("invalid log level")
	}
	f.mu.Lock()
	f.level = l
	f.mu.Unlock()
	return nil
}

func serve(t *testing.T, b Backend) (*Client, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "run", "aird.sock")
	s := NewServer(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.ListenUnix(UnixOptions{Path: sock, Mode: 0o660}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return NewClient(sock), sock
}

func TestSocketModeAndStatus(t *testing.T) {
	c, sock := serve(t, &fakeBackend{level: "info"})
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, err %v; want 0660", fi.Mode().Perm(), err)
	}
	var st Status
	if err := c.Do(context.Background(), "GET", "/v1/status", nil, &st); err != nil || st.State != StateRunning {
		t.Fatalf("status: %+v, %v", st, err)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	b := &fakeBackend{level: "info"}
	c, _ := serve(t, b)
	ctx := context.Background()
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		code   int
	}{
		{"unknown endpoint", "GET", "/v1/nope", nil, 404},
		{"wrong method", "DELETE", "/v1/status", nil, 404},
		{"bad level", "PUT", "/v1/log/level", LogLevel{Level: "loud"}, 400},
		{"unknown field", "PUT", "/v1/log/level", map[string]string{"level": "debug", "x": "y"}, 400},
		{"not json", "PUT", "/v1/log/level", "just a string", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Do(ctx, tc.method, tc.path, tc.body, nil)
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tc.code || se.Body.Error == "" {
				t.Fatalf("got %v, want a %d with an error message", err, tc.code)
			}
			if b.Status().LogLevel != "info" {
				t.Fatal("a rejected request changed the log level")
			}
		})
	}
	if err := c.Do(ctx, "PUT", "/v1/log/level", LogLevel{Level: "debug"}, nil); err != nil || b.Status().LogLevel != "debug" {
		t.Fatalf("a good request was not applied: %v", err)
	}
}

func TestReloadFailureCarriesErrors(t *testing.T) {
	c, _ := serve(t, &fakeBackend{})
	var res ReloadResult
	err := c.Do(context.Background(), "POST", "/v1/reload", nil, &res)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 422 {
		t.Fatalf("reload of a bad file: %v, want HTTP 422", err)
	}
	if res.OK || len(res.Errors) != 1 || res.Errors[0].Line != 3 {
		t.Fatalf("reload result not decoded from the error body: %+v", res)
	}
}

func TestNotRunning(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "absent.sock"))
	err := c.Do(context.Background(), "GET", "/v1/status", nil, nil)
	var nr *NotRunningError
	if !errors.As(err, &nr) || !strings.Contains(err.Error(), "aird is not running") {
		t.Fatalf("got %v, want NotRunningError", err)
	}
}

func TestStaleSocketReplacedLiveSocketRefused(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "aird.sock")
	// A stale socket: bound, then its listener gone without unlinking.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s1 := NewServer(&fakeBackend{}, log)
	if err := s1.ListenUnix(UnixOptions{Path: sock, Mode: 0o600}); err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer s1.Shutdown(context.Background())
	s2 := NewServer(&fakeBackend{}, log)
	err = s2.ListenUnix(UnixOptions{Path: sock, Mode: 0o600})
	if err == nil || !strings.Contains(err.Error(), "another aird") {
		t.Fatalf("second server on a live socket: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := NewClient(sock).Do(ctx, "GET", "/v1/status", nil, nil); err != nil {
		t.Fatalf("the first server stopped answering: %v", err)
	}
}
