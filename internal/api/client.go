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

// Socket is the path of the socket the client talks to.
func (c *Client) Socket() string { return c.socket }

// NotRunningError says the daemon could not be reached: no socket, nobody
// listening on it, or no answer.
type NotRunningError struct {
	Socket string
	Err    error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("aird is not running (cannot connect to %s: %v); start it with 'systemctl start aird', or pass --socket", e.Socket, e.Err)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// UnreachableError is any other failure to exchange a request with the
// daemon (a reset connection, a timeout, a malformed answer).
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("no answer from aird on %s: %v", e.Socket, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// PermissionError says the caller may not use the API: the socket (or its
// directory) is not accessible to it.
type PermissionError struct {
	Socket string
	// Group is the group that may use the socket ("" when only root may).
	Group string
	// Detail adds to the message when set.
	Detail string
}

func (e *PermissionError) Error() string {
	msg := "permission denied: run as root"
	if e.Group != "" {
		msg += " or as a member of group " + e.Group
	} else {
		msg += " (no group may use " + e.Socket + ": set api.socket-group, or Group= in aird.service)"
	}
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// StatusError is a non-2xx answer from the daemon.
type StatusError struct {
	Code int
	Body ErrorBody
}

func (e *StatusError) Error() string { return e.Body.Error }

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out. A non-2xx answer is a *StatusError;
// when out is given it is also decoded from the error body (the reload
// result carries its errors there). Failing to reach aird is a
// *NotRunningError, *PermissionError or *UnreachableError.
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
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Content-Type", "application/json") // the server requires it of changes
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &UnreachableError{Socket: c.socket, Err: fmt.Errorf("read answer: %w", err)}
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
			return &UnreachableError{Socket: c.socket, Err: fmt.Errorf("decode answer: %w", err)}
		}
	}
	return nil
}

func (c *Client) transportError(err error) error {
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return &PermissionError{Socket: c.socket, Group: socketGroup(c.socket)}
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTDIR):
		return &NotRunningError{Socket: c.socket, Err: unwrapSyscall(err)}
	}
	return &UnreachableError{Socket: c.socket, Err: err}
}

func unwrapSyscall(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
