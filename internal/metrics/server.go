package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aird-net/aird/internal/httplimit"
)

// limits bound what scrapers hold: a scrape is one small request and an
// answer of a few hundred kilobytes at most; Prometheus keeps one
// connection per target alive between scrapes.
var limits = httplimit.Options{
	MaxConns:          64,
	MaxConnsPerPeer:   16,
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      60 * time.Second,
	IdleTimeout:       2 * time.Minute,
	MaxHeaderBytes:    16 << 10,
}

// Server serves one registry over HTTP on one listen address.
type Server struct {
	srv  *http.Server
	addr string
}

// Listen starts serving reg at path on addr (host:port). The listener is
// bound before Listen returns, so a port in use is reported at once.
func Listen(reg *Registry, addr, path string, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	s := &Server{srv: &http.Server{Handler: mux}, addr: ln.Addr().String()}
	if _, err := httplimit.Apply(s.srv, limits); err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", s.addr, "err", err)
		}
	}()
	return s, nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string { return s.addr }

// Close stops the server, letting scrapes in flight finish for a moment.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
