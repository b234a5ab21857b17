package httplimit

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the bounds of one server.
type Options struct {
	MaxConns        int // connections at once, in all
	MaxConnsPerPeer int // connections at once from one peer
	// Peer names the peer of a connection for MaxConnsPerPeer; nil: the
	// remote IP address.
	Peer              func(net.Conn) string
	ReadHeaderTimeout time.Duration // from a connection's first byte (or the end of its last request) to the end of the request header
	ReadTimeout       time.Duration // to the end of the request body
	WriteTimeout      time.Duration // to the end of the response; 0: unbounded (for answers that wait on the daemon)
	IdleTimeout       time.Duration // between requests on a kept-alive connection
	MaxHeaderBytes    int
}

func (o Options) validate() error {
	switch {
	case o.MaxConns < 1 || o.MaxConnsPerPeer < 1 || o.MaxConnsPerPeer > o.MaxConns:
		return fmt.Errorf("connection caps %d in all, %d per peer: need 1 <= per peer <= in all", o.MaxConns, o.MaxConnsPerPeer)
	case o.ReadHeaderTimeout <= 0 || o.ReadTimeout <= 0 || o.IdleTimeout <= 0 || o.WriteTimeout < 0:
		return errors.New("read-header, read and idle timeouts must be set")
	case o.MaxHeaderBytes < 1:
		return errors.New("MaxHeaderBytes must be set")
	}
	return nil
}

// Limiter caps the connections of one http.Server.
type Limiter struct {
	o        Options
	mu       sync.Mutex
	total    int
	perPeer  map[string]int
	admitted map[net.Conn]string
	refused  atomic.Uint64
}

// Apply sets o's timeouts on srv and caps its connections; it returns the
// limiter, which counts the connections it refused.
func Apply(srv *http.Server, o Options) (*Limiter, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("http limits: %w", err)
	}
	if o.Peer == nil {
		o.Peer = remoteIP
	}
	l := &Limiter{o: o, perPeer: map[string]int{}, admitted: map[net.Conn]string{}}
	srv.ReadHeaderTimeout = o.ReadHeaderTimeout
	srv.ReadTimeout = o.ReadTimeout
	srv.WriteTimeout = o.WriteTimeout
	srv.IdleTimeout = o.IdleTimeout
	srv.MaxHeaderBytes = o.MaxHeaderBytes
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		l.track(c, s)
		if next != nil {
			next(c, s)
		}
	}
	return l, nil
}

// Refused is the number of connections refused for a cap.
func (l *Limiter) Refused() uint64 { return l.refused.Load() }

// Open is the number of connections held.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *Limiter) track(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		peer := l.o.Peer(c)
		l.mu.Lock()
		why := ""
		switch {
		case l.total >= l.o.MaxConns:
			why = fmt.Sprintf("too many connections (at most %d)", l.o.MaxConns)
		case l.perPeer[peer] >= l.o.MaxConnsPerPeer:
			why = fmt.Sprintf("too many connections from %s (at most %d)", peer, l.o.MaxConnsPerPeer)
		default:
			l.total++
			l.perPeer[peer]++
			l.admitted[c] = peer
		}
		l.mu.Unlock()
		if why != "" {
			l.refused.Add(1)
			refuse(c, why)
		}
	case http.StateClosed, http.StateHijacked:
		l.mu.Lock()
		if peer, ok := l.admitted[c]; ok {
			delete(l.admitted, c)
			l.total--
			if l.perPeer[peer]--; l.perPeer[peer] == 0 {
				delete(l.perPeer, peer)
			}
		}
		l.mu.Unlock()
	}
}

// refuse answers 503 with a JSON error, without waiting for the request,
// and closes the connection.
func refuse(c net.Conn, why string) {
	body := fmt.Sprintf("{\"error\": %q}\n", why)
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	_ = c.Close()
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}
