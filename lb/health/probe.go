package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
)

// Dialer opens the connection a probe uses. The load balancer's dialer sets
// the socket mark so the data plane tunnels the probe to the backend.
type Dialer func(ctx context.Context, network, addr string, mark uint32) (net.Conn, error)

// DirectDialer dials without a mark.
func DirectDialer(ctx context.Context, network, addr string, _ uint32) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// probe runs one check and returns nil when the target passed it.
func probe(ctx context.Context, dial Dialer, s Spec) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	conn, err := dial(ctx, "tcp", s.Dest.String(), s.Mark)
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
		if s.Dest.Addr().Is6() {
			host = "[" + host + "]"
		}
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
