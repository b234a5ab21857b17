package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/httplimit"
)

// Backend is what the server asks of the daemon.
type Backend interface {
	Status() Status
	Reload(ctx context.Context) ReloadResult
	Config() *config.Config
	SetLogLevel(level string) error
}

// Server serves the API on unix sockets. Anyone who can connect may read;
// a request that changes state (any method but GET and HEAD) needs a peer
// that is root or in the socket's group, and a JSON body type.
type Server struct {
	srv     *http.Server
	log     *slog.Logger
	limiter *httplimit.Limiter
	access  atomic.Pointer[socketAccess]

	mu        sync.Mutex
	listeners map[string]net.Listener // by address
}

// socketAccess is who may change state besides root: the socket's group.
type socketAccess struct {
	gid  uint32
	name string // the group's name, or its number
}

// Limits of the API's HTTP server. Requests are small; an answer may wait
// on the daemon (a reload), so writes are not bounded.
var apiLimits = httplimit.Options{
	MaxConns:          128,
	MaxConnsPerPeer:   64,
	Peer:              peerUID,
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       30 * time.Second,
	IdleTimeout:       60 * time.Second,
	MaxHeaderBytes:    64 << 10,
}

// NewServer returns a server for b; it serves nothing until ListenUnix.
func NewServer(b Backend, log *slog.Logger) *Server {
	s := &Server{log: log, listeners: map[string]net.Listener{}}
	s.srv = &http.Server{Handler: s.authorize(routes(b)), ConnContext: withPeer}
	l, err := httplimit.Apply(s.srv, apiLimits)
	if err != nil {
		panic(err) // apiLimits is a constant
	}
	s.limiter = l
	return s
}

// UnixOptions describe the unix socket.
type UnixOptions struct {
	Path  string
	Mode  os.FileMode
	Group string // optional group name or numeric id
}

// ListenUnix serves on a unix socket. A stale socket left by a dead daemon
// is replaced; a live one is an error (another aird is running), and so is
// anything at the path that is not a socket: aird never removes it.
func (s *Server) ListenUnix(o UnixOptions) error {
	if o.Mode&0o002 != 0 {
		return fmt.Errorf("listen on %s: mode %#o lets every local user connect", o.Path, o.Mode)
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
		return fmt.Errorf("listen on %s: %w", o.Path, err)
	}
	if err := removeStale(o.Path); err != nil {
		return err
	}
	ln, err := listenOwned(o.Path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Path, err)
	}
	if err := s.SetSocketAccess(o); err != nil {
		ln.Close()
		return err
	}
	s.serve("unix:"+o.Path, ln)
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

// CloseListener stops accepting on one listener ("unix:/path"); requests
// in flight on it finish normally.
func (s *Server) CloseListener(key string) {
	s.mu.Lock()
	ln := s.listeners[key]
	delete(s.listeners, key)
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Shutdown stops every listener (removing its socket) and waits up to the
// context for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	for key, ln := range s.listeners {
		ln.Close() // now, even if its Serve has not started yet
		delete(s.listeners, key)
	}
	s.mu.Unlock()
	return s.srv.Shutdown(ctx)
}

// RefusedConns is the number of connections refused for a cap.
func (s *Server) RefusedConns() uint64 { return s.limiter.Refused() }

// removeStale removes a socket no process listens on. Anything else at the
// path (a regular file, a directory, a symlink, a live socket) is left as
// it is, and is an error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("listen on %s: %s is there, not a socket; aird replaces only a stale socket: move it away or set another api.socket", path, describeMode(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen on %s: another aird is serving this socket", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := removeIfSocket(path, nil); err != nil {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// SetSocketAccess applies the mode and group of the socket at o.Path, and
// makes that group the one whose members may change state.
func (s *Server) SetSocketAccess(o UnixOptions) error {
	if o.Mode&0o002 != 0 {
		return fmt.Errorf("socket %s: mode %#o lets every local user connect", o.Path, o.Mode)
	}
	if o.Group != "" {
		gid, err := lookupGroup(o.Group)
		if err != nil {
			return err
		}
		if err := os.Lchown(o.Path, -1, gid); err != nil {
			if errors.Is(err, syscall.EPERM) {
				// aird.service grants no CAP_CHOWN: only aird's own
				// groups (Group=) can be given.
				return fmt.Errorf("api.socket-group %q: chown %s: %w: without CAP_CHOWN aird can give the socket only to its "+
					"own group; under aird.service set Group=%s in a drop-in (systemctl edit aird) instead", o.Group, o.Path, err, o.Group)
			}
			return fmt.Errorf("chown %s: %w", o.Path, err)
		}
	}
	fi, err := os.Lstat(o.Path)
	if err != nil {
		return fmt.Errorf("socket %s: %w", o.Path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Type() != os.ModeSocket || !ok {
		return fmt.Errorf("socket %s: %s is there now, not aird's socket", o.Path, describeMode(fi.Mode()))
	}
	if err := os.Chmod(o.Path, o.Mode); err != nil {
		return fmt.Errorf("chmod %s: %w", o.Path, err)
	}
	s.access.Store(&socketAccess{gid: st.Gid, name: groupName(st.Gid)})
	return nil
}

func lookupGroup(name string) (int, error) {
	if gid, err := strconv.Atoi(name); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("socket group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}

func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return g.Name
	}
	return id
}

func describeMode(m os.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case os.ModeDir:
		return "a directory"
	case os.ModeSymlink:
		return "a symbolic link"
	case os.ModeSocket:
		return "a socket"
	case os.ModeNamedPipe:
		return "a FIFO"
	default:
		return "a device or special file"
	}
}

// authorize lets reads through, and requests that change state only from
// root or a member of the socket's group, and only with a JSON body type
// (so no browser-style form or text/plain request is taken).
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		p, err := peerFrom(r.Context())
		if err == nil {
			err = s.mayChange(p)
		}
		if err != nil {
			s.log.Warn("api request refused", append(peerAttrs(p), "method", r.Method, "path", r.URL.Path, "err", err)...)
			writeError(w, http.StatusForbidden, err)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Errorf("a request that changes state must be sent with Content-Type: application/json, not %q", r.Header.Get("Content-Type")))
			return
		}
		s.log.Info("api request", append(peerAttrs(p), "method", r.Method, "path", r.URL.Path)...)
		next.ServeHTTP(w, r)
	})
}

// peerAttrs are the log attributes naming a peer.
func peerAttrs(p *Peer) []any {
	if p == nil {
		return []any{"peer", "unknown"}
	}
	return []any{"peer_uid", p.UID, "peer_gid", p.GID, "peer_pid", p.PID}
}

// mayChange says whether p may change state: root, or a member of the
// socket's group.
func (s *Server) mayChange(p *Peer) error {
	if p.UID == 0 {
		return nil
	}
	a := s.access.Load()
	if a != nil && a.gid != 0 && p.InGroup(a.gid) {
		return nil
	}
	who := "root"
	if a != nil && a.gid != 0 {
		who = "root or a member of group " + a.name + " (api.socket-group)"
	}
	return fmt.Errorf("permission denied: changing aird's state needs %s; %s is not", who, p)
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
