package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dial is what a probe connects.
type Dial struct {
	Network string         // "tcp"
	Source  netip.Addr     // local address; invalid: the kernel chooses
	Dest    netip.AddrPort // remote address and port
	Mark    uint32         // SO_MARK; 0: none
}

// Dialer opens the connection a probe uses.
type Dialer func(ctx context.Context, d Dial) (net.Conn, error)

// SocketDialer dials from d.Source with socket mark d.Mark (setting a mark
// needs CAP_NET_ADMIN). The load balancer's tunnelled probes use the mark to
// make the data plane tunnel them to one backend.
func SocketDialer(ctx context.Context, d Dial) (net.Conn, error) {
	var nd net.Dialer
	if d.Source.IsValid() {
		nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(d.Source, 0))
	}
	if d.Mark != 0 {
		nd.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(d.Mark))
			}); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("set socket mark %#x: %w", d.Mark, serr)
			}
			return nil
		}
	}
	return nd.DialContext(ctx, d.Network, d.Dest.String())
}

// probe runs one check and returns nil when the target passed it.
func probe(ctx context.Context, dial Dialer, s Spec) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	conn, err := dial(ctx, Dial{Network: "tcp", Source: s.Source, Dest: s.Dest, Mark: s.Mark})
	if err != nil {
		return fmt.Errorf("connect %s: %w", s.Dest, err)
	}
	defer conn.Close()
	if s.Type != TypeHTTP {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	return httpGet(conn, s)
}

func httpGet(conn net.Conn, s Spec) error {
	host := s.Host
	if host == "" {
		host = s.Dest.Addr().String()
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		host = "[" + host + "]" // an IPv6 literal, e.g. a VIP
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+host+s.Path, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", "aird-health-check")
	req.Close = true
	if err := req.Write(conn); err != nil {
		return fmt.Errorf("send GET %s: %w", s.Path, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return fmt.Errorf("read response to GET %s: %w", s.Path, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < s.StatusMin || resp.StatusCode > s.StatusMax {
		return fmt.Errorf("GET %s: status %d, want %d-%d", s.Path, resp.StatusCode, s.StatusMin, s.StatusMax)
	}
	return nil
}
