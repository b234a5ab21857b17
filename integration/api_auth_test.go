package integration

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// TestAPIAuthorization drives a running aird as root, as uid 65534 outside
// the socket's group and as uid 65534 inside it (real setuid airctl
// processes; the daemon learns who they are from the kernel). The socket
// is opened to everyone by hand, as a careless chmod would: reads work,
// changes do not, and nothing changes. A browser-style text/plain POST is
// refused even from root.
func TestAPIAuthorization(t *testing.T) {
	const group = "4242"
	n := newNode(t)
	sock := "socket = \"" + n.socket + "\""
	n.writeConfig(strings.Replace(n.config("info", "uplink0"), sock, sock+"\nsocket-group = \""+group+"\"", 1))
	n.start()
	testutil.OpenPathTo(t, n.socket)
	if err := os.Chmod(n.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.Credential{Uid: testutil.Nobody, Gid: testutil.Nobody}
	airctlAs := func(cred *syscall.Credential, args ...string) (string, int) {
		return testutil.RunAs(t, cred, nil, n.airctlBin, append([]string{"--socket", n.socket}, args...)...)
	}
	if out, code := airctlAs(nobody, "status", "-o", "json"); code != 0 || !strings.Contains(out, `"state": "running"`) {
		t.Fatalf("airctl status as uid 65534: exit %d: %s", code, out)
	}
	for _, args := range [][]string{{"log-level", "debug"}, {"reload"}, {"lb", "drain", "web", "fd00::1"}} {
		out, code := airctlAs(nobody, args...)
		if code == 0 || !strings.Contains(out, "permission denied: changing aird's state needs root or a member of group 4242 (api.socket-group); uid 65534 gid 65534") {
			t.Errorf("airctl %v as uid 65534: exit %d: %s", args, code, out)
		}
	}
	if st := n.status(); st.LogLevel != "info" || st.Config.Generation != 1 || st.LastReload != nil {
		t.Fatalf("refused requests changed the daemon: log level %q, generation %d, last reload %+v", st.LogLevel, st.Config.Generation, st.LastReload)
	}
	if !strings.Contains(n.log.String(), `msg="api request refused" component=api peer_uid=65534 peer_gid=65534`) {
		t.Error("the log does not record the refused change")
	}

	// A member of the group, through the socket's group permission.
	if err := os.Chmod(n.socket, 0o660); err != nil {
		t.Fatal(err)
	}
	member := &syscall.Credential{Uid: testutil.Nobody, Gid: testutil.Nobody, Groups: []uint32{4242}}
	if out, code := airctlAs(member, "log-level", "debug"); code != 0 || n.status().LogLevel != "debug" {
		t.Fatalf("airctl log-level debug as a member of group 4242: exit %d: %s", code, out)
	}
	if !strings.Contains(n.log.String(), `msg="api request" component=api peer_uid=65534 peer_gid=65534`) {
		t.Error("the log does not record who changed the log level")
	}

	// text/plain, a form or no type: refused before the daemon sees it.
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
		code, body := unixRequest(t, n.socket, "POST", "/v1/reload", ct)
		if code != http.StatusUnsupportedMediaType || !strings.Contains(body, "Content-Type: application/json") {
			t.Errorf("POST /v1/reload as %q: %d %s", ct, code, body)
		}
	}
	if st := n.status(); st.Config.Generation != 1 || st.LastReload != nil {
		t.Fatalf("a refused POST reloaded: generation %d, last reload %+v", st.Config.Generation, st.LastReload)
	}
}

// TestAPISocketNeverReplacesAFile: an api.socket naming a regular file
// fails a reload (the old socket keeps serving) and a start, and the file
// survives both.
func TestAPISocketNeverReplacesAFile(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.start()
	file := filepath.Join(n.dir, "precious")
	if err := os.WriteFile(file, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.writeConfig(strings.Replace(n.config("info", "uplink0"), "socket = \""+n.socket+"\"", "socket = \""+file+"\"", 1))
	_, errs, code := n.airctl("reload")
	if code != 1 || !strings.Contains(errs, "a regular file is there, not a socket") {
		t.Fatalf("reload onto a regular file: exit %d: %s", code, errs)
	}
	if st := n.status(); st.Config.Generation != 1 {
		t.Fatalf("generation %d after the failed reload", st.Config.Generation)
	}
	checkFile(t, file)

	// A second aird (its own namespace and pin path) with that socket
	// path does not start.
	m := newAirdIn(t, testutil.NewNetns(t, "airdx-"))
	m.writeConfig(strings.Replace(m.config("info"), "socket = \""+m.socket+"\"", "socket = \""+file+"\"", 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+m.ns, m.aird, "--config", m.cfgPath).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "a regular file is there, not a socket") {
		t.Fatalf("aird with api.socket on a regular file: %v\n%s", err, out)
	}
	checkFile(t, file)
}

func checkFile(t *testing.T, path string) {
	t.Helper()
	if data, err := os.ReadFile(path); err != nil || string(data) != "keep me\n" {
		t.Fatalf("%s: %q %v", path, data, err)
	}
}

// TestHTTPConnectionCaps: a local client that opens connections without
// end gets 16 to the metrics endpoint and 64 to the API (per peer), the
// rest a 503 at once; the server closes the ones it held when they send no
// request for 5 s, and scrapes and airctl work again.
func TestHTTPConnectionCaps(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.config("info", "uplink0"))
	n.start()
	var conns []net.Conn
	testutil.InNetns(t, n.ns, func() {
		for range 40 {
			c, err := net.Dial("tcp", "127.0.0.1:9469")
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
	})
	defer closeAll(conns)
	if held, refused := classify(conns); held != 16 || refused != 24 {
		t.Fatalf("metrics: %d connections held, %d refused; want 16 and 24", held, refused)
	}
	if open := stillOpen(conns, 15*time.Second); open != 0 {
		t.Fatalf("metrics: %d silent connections still open 15s on (ReadHeaderTimeout 5s)", open)
	}
	// The server sees the closes a moment later.
	if !testutil.WaitFor(10*time.Second, func() bool { return strings.Contains(n.metrics(), "aird_config_generation 1") }) {
		t.Fatal("no scrape within 10s of the connections closing")
	}
	conns = nil
	for range 70 {
		c, err := net.Dial("unix", n.socket)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer closeAll(conns)
	if held, refused := classify(conns); held != 64 || refused != 6 {
		t.Fatalf("API: %d connections held, %d refused; want 64 and 6", held, refused)
	}
	if open := stillOpen(conns, 15*time.Second); open != 0 {
		t.Fatalf("API: %d silent connections still open 15s on (ReadHeaderTimeout 5s)", open)
	}
	if !testutil.WaitFor(10*time.Second, func() bool { _, _, code := n.airctl("status"); return code == 0 }) {
		t.Fatal("airctl status fails 10s after the connections closed")
	}
}

// classify reads from every connection for a second at once: the server
// closes a refused one with a 503 at once, and holds the others.
func classify(conns []net.Conn) (held, refused int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			b, err := io.ReadAll(c)
			var ne net.Error
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.As(err, &ne) && ne.Timeout() && len(b) == 0:
				held++
			case strings.HasPrefix(string(b), "HTTP/1.1 503") && strings.Contains(string(b), "too many connections"):
				refused++
			}
		}()
	}
	wg.Wait()
	return held, refused
}

// stillOpen waits up to d for the server to close every connection and
// returns how many it did not.
func stillOpen(conns []net.Conn, d time.Duration) int {
	var open atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(deadline)
			if _, err := io.Copy(io.Discard, c); err != nil {
				open.Add(1) // the deadline, not the server, ended the read
			}
		}()
	}
	wg.Wait()
	return int(open.Load())
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// unixRequest sends one request with exactly the content type given (none
// when empty) and returns the status and body.
func unixRequest(t *testing.T, sock, method, path, ctype string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequest(method, "http://aird"+path, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
