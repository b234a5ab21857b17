package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Client talks to a running aird over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{socket: path, http: &http.Client{Transport: tr, Timeout: 5 * time.Minute}}
}

// NotRunningError says the daemon could not be reached.
type NotRunningError struct {
	Socket string
	Err    error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("aird is not running (cannot connect to %s: %v); start it with 'systemctl start aird', or pass --socket", e.Socket, e.Err)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// StatusError is a non-2xx answer from the daemon.
type StatusError struct {
	Code int
	Body ErrorBody
}

func (e *StatusError) Error() string { return e.Body.Error }

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out. A non-2xx answer is a *StatusError; when out is given it is also
// decoded from the error body (the reload result carries its errors there).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://aird"+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EACCES) {
			return &NotRunningError{Socket: c.socket, Err: unwrapSyscall(err)}
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		se := &StatusError{Code: resp.StatusCode}
		if json.Unmarshal(data, &se.Body) != nil || se.Body.Error == "" {
			se.Body.Error = fmt.Sprintf("aird answered %s", resp.Status)
		}
		if out != nil {
			_ = json.Unmarshal(data, out)
		}
		return se
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

func unwrapSyscall(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
