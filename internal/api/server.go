package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aird-net/aird/internal/config"
)

// Backend is what the server asks of the daemon.
type Backend interface {
	Status() Status
	Reload(ctx context.Context) ReloadResult
	Config() *config.Config
	SetLogLevel(level string) error
}

// Server serves the API on any number of listeners.
type Server struct {
	srv *http.Server
	log *slog.Logger

	mu        sync.Mutex
	listeners map[string]net.Listener // by address
}

// NewServer returns a server for b; it serves nothing until Listen.
func NewServer(b Backend, log *slog.Logger) *Server {
	return &Server{
		srv:       &http.Server{Handler: routes(b), ReadHeaderTimeout: 5 * time.Second},
		log:       log,
		listeners: map[string]net.Listener{},
	}
}

// UnixOptions describe the unix socket.
type UnixOptions struct {
	Path  string
	Mode  os.FileMode
	Group string // optional group name or numeric id
}

// ListenUnix serves on a unix socket. A stale socket file left by a dead
// daemon is replaced; a live one is an error (another aird is running).
func (s *Server) ListenUnix(o UnixOptions) error {
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
		return fmt.Errorf("listen on %s: %w", o.Path, err)
	}
	if err := removeStale(o.Path); err != nil {
		return err
	}
	ln, err := net.Listen("unix", o.Path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Path, err)
	}
	if err := SetSocketAccess(o); err != nil {
		ln.Close()
		return err
	}
	s.serve("unix:"+o.Path, ln)
	return nil
}

// ListenTCP serves on a TCP address (the config only allows loopback).
func (s *Server) ListenTCP(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.serve("tcp:"+addr, ln)
	return nil
}

func (s *Server) serve(key string, ln net.Listener) {
	s.mu.Lock()
	s.listeners[key] = ln
	s.mu.Unlock()
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("api listener stopped", "listener", key, "err", err)
		}
	}()
}

// CloseListener stops accepting on one listener ("unix:/path" or
// "tcp:host:port"); requests in flight on it finish normally.
func (s *Server) CloseListener(key string) {
	s.mu.Lock()
	ln := s.listeners[key]
	delete(s.listeners, key)
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Shutdown stops every listener and waits up to the context for requests in
// flight.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func removeStale(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen on %s: another aird is serving this socket", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// SetSocketAccess applies the mode and group of an existing socket.
func SetSocketAccess(o UnixOptions) error {
	if o.Group != "" {
		gid, err := strconv.Atoi(o.Group)
		if err != nil {
			g, lerr := user.LookupGroup(o.Group)
			if lerr != nil {
				return fmt.Errorf("socket group %q: %w", o.Group, lerr)
			}
			gid, _ = strconv.Atoi(g.Gid)
		}
		if err := os.Chown(o.Path, -1, gid); err != nil {
			if errors.Is(err, syscall.EPERM) {
				// aird.service grants no CAP_CHOWN: only aird's own
				// groups (Group=) can be given.
				return fmt.Errorf("api.socket-group %q: chown %s: %w: without CAP_CHOWN aird can give the socket only to its "+
					"own group; under aird.service set Group=%s in a drop-in (systemctl edit aird) instead", o.Group, o.Path, err, o.Group)
			}
			return fmt.Errorf("chown %s: %w", o.Path, err)
		}
	}
	if err := os.Chmod(o.Path, o.Mode); err != nil {
		return fmt.Errorf("chmod %s: %w", o.Path, err)
	}
	return nil
}

func routes(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status())
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Config())
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		res := b.Reload(r.Context())
		code := http.StatusOK
		if !res.OK {
			code = http.StatusUnprocessableEntity
		}
		writeJSON(w, code, res)
	})
	mux.HandleFunc("GET /v1/log/level", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, LogLevel{Level: b.Status().LogLevel})
	})
	mux.HandleFunc("PUT /v1/log/level", func(w http.ResponseWriter, r *http.Request) {
		var req LogLevel
		if err := decodeBody(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if err := b.SetLogLevel(req.Level); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, req)
	})
	planeRoutes(mux, b)
	ipamRoutes(mux, b)
	endpointRoutes(mux, b)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// decodeBody reads a small JSON body strictly: unknown fields are errors.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, ErrorBody{Error: err.Error()})
}
