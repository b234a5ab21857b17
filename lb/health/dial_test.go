package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

// SocketDialer connects from Spec.Source with the socket mark Spec.Mark.
func TestSocketDialerSourceAndMark(t *testing.T) {
	testutil.RequirePrivileged(t) // SO_MARK needs CAP_NET_ADMIN
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		peer <- c.RemoteAddr()
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := SocketDialer(ctx, Dial{Network: "tcp", Source: netip.MustParseAddr("127.0.0.2"),
		Dest: netip.MustParseAddrPort(ln.Addr().String()), Mark: 0xa12d0007})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mark int
	var merr error
	if err := raw.Control(func(fd uintptr) { mark, merr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) }); err != nil || merr != nil {
		t.Fatalf("read SO_MARK: %v %v", err, merr)
	}
	if uint32(mark) != 0xa12d0007 {
		t.Errorf("socket mark %#x, want 0xa12d0007", mark)
	}
	if a := (<-peer).(*net.TCPAddr); a.IP.String() != "127.0.0.2" {
		t.Errorf("connection came from %s, want 127.0.0.2", a)
	}
}

// An HTTP check of an IPv6 VIP sends a valid Host header (the literal in
// brackets).
func TestHTTPCheckIPv6Host(t *testing.T) {
	var host atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
	}))
	defer srv.Close()
	c, ev := newChecker(t)
	s := spec(TypeHTTP, netip.MustParseAddrPort(srv.Listener.Addr().String()))
	s.Host = "fd00:300::10"
	add(t, c, s)
	waitChecks(t, c, s, 2)
	if got, _ := host.Load().(string); got != "[fd00:300::10]" {
		t.Fatalf("Host header %q, want [fd00:300::10]", got)
	}
	if st := status(c, s); !st.Healthy || st.Failures != 0 {
		t.Fatalf("status %+v", st)
	}
	select {
	case e := <-ev:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
}
