package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// helperEnv makes the test binary a client that sends one request and
// prints the answer's status: "METHOD PATH CONTENT-TYPE SOCKET [BODY]".
const helperEnv = "AIRD_API_TEST_REQUEST"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helperRequest(spec))
	}
	os.Exit(m.Run())
}

func helperRequest(spec string) int {
	f := strings.SplitN(spec, " ", 5)
	body := ""
	if len(f) == 5 {
		body = f[4]
	}
	code, text, err := rawRequest(f[3], f[0], f[1], f[2], body)
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	fmt.Printf("status %d %s", code, text)
	return 0
}

// rawRequest sends one request over the unix socket with exactly the
// content type given ("-" for none).
func rawRequest(sock, method, path, ctype, body string) (int, string, error) {
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequest(method, "http://aird"+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if ctype != "-" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// serveAs serves b on a socket in a directory every user can reach, with
// the given mode and group.
func serveAs(t *testing.T, b Backend, mode os.FileMode, group string) (*Server, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "run", "aird.sock")
	s := NewServer(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.ListenUnix(UnixOptions{Path: sock, Mode: mode, Group: group}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	testutil.OpenPathTo(t, sock)
	return s, sock
}

// TestChangesNeedRootOrTheSocketGroup runs real clients as uid 65534 (the
// kernel's SO_PEERCRED, not a header, tells the server who they are). The
// socket is opened to everyone by hand, as a careless chmod would: the
// server still lets only root and the socket's group change state.
func TestChangesNeedRootOrTheSocketGroup(t *testing.T) {
	testutil.RequirePrivileged(t)
	const group = 4242
	b := &fakeBackend{level: "info"}
	_, sock := serveAs(t, b, 0o660, strconv.Itoa(group))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	as := func(gid uint32, groups []uint32, spec string) string {
		t.Helper()
		out, code := testutil.RunAs(t, &syscall.Credential{Uid: testutil.Nobody, Gid: gid, Groups: groups},
			[]string{helperEnv + "=" + spec + " " + sock + " " + `{"level":"debug"}`}, self)
		if code != 0 {
			t.Fatalf("client as uid %d: exit %d: %s", testutil.Nobody, code, out)
		}
		return out
	}
	put := "PUT /v1/log/level application/json"

	// Outside the group, through a socket anyone may open.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if out := as(testutil.Nobody, nil, "GET /v1/status -"); !strings.HasPrefix(out, "status 200") {
		t.Errorf("a read by uid 65534: %s", out)
	}
	for _, spec := range []string{put, "POST /v1/reload application/json", "POST /v1/bgp/drain application/json"} {
		out := as(testutil.Nobody, nil, spec)
		if !strings.HasPrefix(out, "status 403") || !strings.Contains(out, "permission denied: changing aird's state needs root or a member of group 4242 (api.socket-group); uid 65534 gid 65534") {
			t.Errorf("%s by uid 65534: %s", spec, out)
		}
	}
	if b.Status().LogLevel != "info" {
		t.Fatal("a refused request changed the log level")
	}

	// In the group: as a supplementary group, or as the primary one. The
	// socket is back to 0660: the group's permission lets them in.
	if err := os.Chmod(sock, 0o660); err != nil {
		t.Fatal(err)
	}
	if out := as(testutil.Nobody, []uint32{group}, put); !strings.HasPrefix(out, "status 200") || b.Status().LogLevel != "debug" {
		t.Errorf("PUT by a supplementary member of the group: %s (level %s)", out, b.Status().LogLevel)
	}
	if err := b.SetLogLevel("info"); err != nil {
		t.Fatal(err)
	}
	if out := as(group, nil, put); !strings.HasPrefix(out, "status 200") || b.Status().LogLevel != "debug" {
		t.Errorf("PUT by a primary member of the group: %s", out)
	}
}

// TestChangesWithoutAGroupNeedRoot: a socket left in root's group (gid 0)
// delegates nothing; a member of gid 0 who is not root may only read.
func TestChangesWithoutAGroupNeedRoot(t *testing.T) {
	testutil.RequirePrivileged(t)
	b := &fakeBackend{level: "info"}
	_, sock := serveAs(t, b, 0o660, "0")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(spec string) string {
		out, _ := testutil.RunAs(t, &syscall.Credential{Uid: testutil.Nobody, Gid: 0}, []string{helperEnv + "=" + spec + " " + sock + ` {"level":"debug"}`}, self)
		return out
	}
	if out := run("GET /v1/status -"); !strings.HasPrefix(out, "status 200") {
		t.Errorf("read: %s", out)
	}
	if out := run("PUT /v1/log/level application/json"); !strings.HasPrefix(out, "status 403") || !strings.Contains(out, "needs root; uid 65534") {
		t.Errorf("change: %s", out)
	}
}

// TestChangesNeedJSON: a browser-style request (text/plain, a form, no
// type) is refused before it reaches the daemon, even from root.
func TestChangesNeedJSON(t *testing.T) {
	b := &fakeBackend{level: "info", reloadOK: true}
	_, sock := serveAs(t, b, 0o660, strconv.Itoa(os.Getgid()))
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "-", "application/json-patch+json"} {
		for _, req := range []struct{ method, path string }{{"PUT", "/v1/log/level"}, {"POST", "/v1/reload"}} {
			code, body, err := rawRequest(sock, req.method, req.path, ct, `{"level":"debug"}`)
			if err != nil || code != http.StatusUnsupportedMediaType || !strings.Contains(body, "must be sent with Content-Type: application/json") {
				t.Errorf("%s %s as %s: %d %s %v", req.method, req.path, ct, code, body, err)
			}
		}
	}
	if b.Status().LogLevel != "info" {
		t.Fatal("a refused request changed the log level")
	}
	if code, body, err := rawRequest(sock, "PUT", "/v1/log/level", "application/json; charset=utf-8", `{"level":"debug"}`); err != nil || code != 200 || b.Status().LogLevel != "debug" {
		t.Fatalf("a JSON request: %d %s %v", code, body, err)
	}
}

// TestSocketPathNeverRemovesOtherFiles: a regular file, a directory, a
// symlink or a FIFO at the socket path stays as it is, and ListenUnix
// fails naming it; a file put in place of a serving socket survives the
// shutdown.
func TestSocketPathNeverRemovesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		make       func(p string) error
	}{
		{"file", "a regular file is there", func(p string) error { return os.WriteFile(p, []byte("keep me"), 0o600) }},
		{"dir", "a directory is there", func(p string) error { return os.Mkdir(p, 0o700) }},
		{"symlink", "a symbolic link is there", func(p string) error { return os.Symlink(target, p) }},
		{"fifo", "a FIFO is there", func(p string) error { return syscall.Mkfifo(p, 0o600) }},
	} {
		p := filepath.Join(dir, c.name)
		if err := c.make(p); err != nil {
			t.Fatal(err)
		}
		before, _ := os.Lstat(p)
		err := NewServer(&fakeBackend{}, log).ListenUnix(UnixOptions{Path: p, Mode: 0o600})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("%s: %v", c.name, err)
		}
		if after, err := os.Lstat(p); err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
			t.Errorf("%s at the socket path changed: %v", c.name, err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "file")); err != nil || string(data) != "keep me" {
		t.Errorf("the regular file: %q %v", data, err)
	}
	if data, err := os.ReadFile(target); err != nil || string(data) != "keep me" {
		t.Errorf("the symlink's target: %q %v", data, err)
	}

	// A file that took the serving socket's place is not removed at
	// shutdown; the socket itself is.
	sock := filepath.Join(dir, "aird.sock")
	s := NewServer(&fakeBackend{}, log)
	if err := s.ListenUnix(UnixOptions{Path: sock, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sock, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = s.Shutdown(context.Background())
	if data, err := os.ReadFile(sock); err != nil || string(data) != "keep me" {
		t.Errorf("the file in the socket's place after shutdown: %q %v", data, err)
	}
	sock2 := filepath.Join(dir, "aird2.sock")
	s2 := NewServer(&fakeBackend{}, log)
	if err := s2.ListenUnix(UnixOptions{Path: sock2, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	_ = s2.Shutdown(context.Background())
	if _, err := os.Lstat(sock2); !os.IsNotExist(err) {
		t.Errorf("the socket is still there after shutdown: %v", err)
	}
}

func TestWorldWritableSocketRefused(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "aird.sock")
	err := NewServer(&fakeBackend{}, slog.New(slog.NewTextHandler(io.Discard, nil))).ListenUnix(UnixOptions{Path: sock, Mode: 0o666})
	if err == nil || !strings.Contains(err.Error(), "lets every local user connect") {
		t.Fatalf("mode 0666: %v", err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("a socket was made: %v", err)
	}
}

// TestConnectionCap: one uid holds at most 64 connections; the rest are
// answered 503 at once.
func TestConnectionCap(t *testing.T) {
	s, sock := serveAs(t, &fakeBackend{}, 0o660, strconv.Itoa(os.Getgid()))
	var held []net.Conn
	for range 70 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	refused := 0
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b, _ := io.ReadAll(c)
		if strings.HasPrefix(string(b), "HTTP/1.1 503") && strings.Contains(string(b), fmt.Sprintf("too many connections from uid %d (at most 64)", os.Getuid())) {
			refused++
		}
	}
	if refused != 6 || s.RefusedConns() != 6 {
		t.Fatalf("%d connections refused (counted %d), want 6", refused, s.RefusedConns())
	}
}
