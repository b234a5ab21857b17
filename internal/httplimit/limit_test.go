package httplimit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, o Options) (string, *Limiter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})}
	l, err := Apply(srv, o)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), l
}

func opts() Options {
	return Options{MaxConns: 6, MaxConnsPerPeer: 4, ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: time.Second,
		IdleTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4096}
}

// closedWithin reports whether the server closes c within d, and what it
// sent first.
func closedWithin(c net.Conn, d time.Duration) (bool, string) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	data, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, string(data)
	}
	return true, string(data)
}

func TestConnectionCaps(t *testing.T) {
	o := opts()
	o.ReadHeaderTimeout = 5 * time.Second
	o.Peer = func(c net.Conn) string { return "one" } // every connection from one peer
	addr, l := serve(t, o)
	var conns []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	held, refused := 0, 0
	for _, c := range conns {
		closed, got := closedWithin(c, 500*time.Millisecond)
		switch {
		case !closed:
			held++
		case strings.HasPrefix(got, "HTTP/1.1 503") && strings.Contains(got, "too many connections from one (at most 4)"):
			refused++
		default:
			t.Errorf("a connection was closed with %q", got)
		}
	}
	if held != 4 || refused != 6 || l.Refused() != 6 || l.Open() != 4 {
		t.Fatalf("held %d, refused %d (counted %d, open %d); want 4 and 6", held, refused, l.Refused(), l.Open())
	}
	// The slots come back when the held connections go.
	for _, c := range conns {
		c.Close()
	}
	waitOpen(t, l, 0)
	if _, err := get(addr); err != nil {
		t.Fatalf("after the held connections closed: %v", err)
	}
}

func TestTotalCap(t *testing.T) {
	o := opts()
	o.ReadHeaderTimeout = 5 * time.Second
	n := 0
	o.Peer = func(c net.Conn) string { n++; return string(rune('a' + n)) } // every connection its own peer
	addr, l := serve(t, o)
	for range 9 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitRefused(t, l, 3)
	if l.Open() != 6 {
		t.Fatalf("%d connections open, want the cap of 6", l.Open())
	}
}

// TestTimeouts: a connection that sends nothing, or half a header, is
// closed after ReadHeaderTimeout; a kept-alive connection after
// IdleTimeout.
func TestTimeouts(t *testing.T) {
	addr, l := serve(t, opts())
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	half, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	_, _ = io.WriteString(half, "GET / HTTP/1.1\r\nHost: x\r\n")
	for name, c := range map[string]net.Conn{"silent": silent, "half a header": half} {
		if closed, _ := closedWithin(c, 5*time.Second); !closed {
			t.Errorf("%s connection still open after 5s (ReadHeaderTimeout 300ms)", name)
		}
	}
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	resp.Body.Close()
	if closed, _ := closedWithin(idle, 5*time.Second); !closed {
		t.Error("idle kept-alive connection still open after 5s (IdleTimeout 300ms)")
	}
	waitOpen(t, l, 0)
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{},
		{MaxConns: 2, MaxConnsPerPeer: 3, ReadHeaderTimeout: 1, ReadTimeout: 1, IdleTimeout: 1, MaxHeaderBytes: 1},
		{MaxConns: 2, MaxConnsPerPeer: 1, ReadTimeout: 1, IdleTimeout: 1, MaxHeaderBytes: 1},
		{MaxConns: 2, MaxConnsPerPeer: 1, ReadHeaderTimeout: 1, ReadTimeout: 1, IdleTimeout: 1},
	} {
		if _, err := Apply(&http.Server{}, o); err == nil {
			t.Errorf("Apply accepted %+v", o)
		}
	}
}

func get(addr string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func waitOpen(t *testing.T, l *Limiter, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); l.Open() != n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", l.Open(), n)
		}
	}
}

func waitRefused(t *testing.T, l *Limiter, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); l.Refused() != n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections refused, want %d", l.Refused(), n)
		}
	}
}
