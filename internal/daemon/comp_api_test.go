package daemon

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
)

func apiConfig(socket string) *config.Config {
	c := config.Default()
	c.API.Socket = socket
	return c
}

func answers(path string) bool {
	c, err := net.Dial("unix", path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestAPISocketReload: what docs/configuration.md says of [api] on reload:
// a moved socket is opened before the old one is closed, so a path that
// cannot take the socket (a regular file there, left alone) fails the
// reload and the old socket keeps answering.
func TestAPISocketReload(t *testing.T) {
	dir := t.TempDir()
	srv := api.NewServer(&Daemon{}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	c := &apiComponent{srv: srv}
	a := apiConfig(filepath.Join(dir, "a.sock"))
	if err := c.apply(nil, a); err != nil {
		t.Fatal(err)
	}
	if !answers(a.API.Socket) {
		t.Fatal("the socket does not answer after start")
	}

	blocked := filepath.Join(dir, "file")
	if err := os.WriteFile(blocked, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.apply(a, apiConfig(blocked)); err == nil {
		t.Fatal("a reload onto a regular file succeeded")
	}
	if b, err := os.ReadFile(blocked); err != nil || string(b) != "not a socket" {
		t.Fatalf("the regular file at the new path was touched: %q, %v", b, err)
	}
	if !answers(a.API.Socket) {
		t.Fatal("after the failed move the old socket no longer answers")
	}

	b := apiConfig(filepath.Join(dir, "b.sock"))
	if err := c.apply(a, b); err != nil {
		t.Fatal(err)
	}
	if !answers(b.API.Socket) || answers(a.API.Socket) {
		t.Fatal("after the move: the new socket does not answer, or the old one still does")
	}
	if _, err := os.Stat(a.API.Socket); !os.IsNotExist(err) {
		t.Fatalf("the old socket file is left behind: %v", err)
	}
}
