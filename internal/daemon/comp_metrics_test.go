package daemon

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/metrics"
	"github.com/aird-net/aird/internal/version"
)

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape returns the status of GET http://addr/path, or 0 when nothing
// answers.
func scrape(t *testing.T, addr, path string) int {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && !strings.Contains(string(b), "aird_build_info") {
		t.Errorf("GET %s%s: 200 without aird_build_info", addr, path)
	}
	return resp.StatusCode
}

func metricsConfig(listen, path string) *config.Config {
	c := config.Default()
	c.Metrics = config.Metrics{Listen: listen, Path: path}
	return c
}

// TestMetricsEndpointReload: what docs/configuration.md says of [metrics]
// on reload: a new address is bound before the old one is closed, so a
// busy port fails the reload and the endpoint stays where it was; a new
// path is served at once; listen = "" turns the endpoint off.
func TestMetricsEndpointReload(t *testing.T) {
	c := &metricsComponent{reg: metrics.New(version.Get()), log: slog.New(slog.DiscardHandler)}
	t.Cleanup(func() { _ = c.close(intentStop) })
	a := freeAddr(t)
	cfgA := metricsConfig(a, "/metrics")
	if err := c.apply(nil, cfgA); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, a, "/metrics"); got != http.StatusOK {
		t.Fatalf("GET %s/metrics: %d, want 200", a, got)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := c.apply(cfgA, metricsConfig(busy.Addr().String(), "/metrics")); err == nil {
		t.Fatal("a reload onto a busy port succeeded")
	}
	if got := scrape(t, a, "/metrics"); got != http.StatusOK {
		t.Fatalf("after the failed move: GET %s/metrics: %d, want 200 (the endpoint must stay)", a, got)
	}

	b := freeAddr(t)
	cfgB := metricsConfig(b, "/metrics")
	if err := c.apply(cfgA, cfgB); err != nil {
		t.Fatal(err)
	}
	if scrape(t, b, "/metrics") != http.StatusOK || scrape(t, a, "/metrics") != 0 {
		t.Fatalf("after the move to %s: the new address does not answer or the old one %s still does", b, a)
	}

	cfgPath := metricsConfig(b, "/m2")
	if err := c.apply(cfgB, cfgPath); err != nil {
		t.Fatal(err)
	}
	if scrape(t, b, "/m2") != http.StatusOK || scrape(t, b, "/metrics") != http.StatusNotFound {
		t.Fatal("after the path change: /m2 is not served, or /metrics still is")
	}

	if err := c.apply(cfgPath, metricsConfig("", "/metrics")); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, b, "/m2"); got != 0 {
		t.Fatalf("listen = \"\": the endpoint still answers (%d)", got)
	}
}

// TestMetricsEndpointConnectionCap: the metrics endpoint takes 16
// connections from one client address (docs/operator-guide.md, "Who may
// use the API"); the 17th is answered 503 and closed.
func TestMetricsEndpointConnectionCap(t *testing.T) {
	srv, err := metrics.Listen(metrics.New(version.Get()), "127.0.0.1:0", "/metrics", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 16 {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The server counts a connection once it has accepted it: a request on
	// the last of the 16 is answered, so all 16 are in.
	if _, err := io.WriteString(held[15], "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = held[15].SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(held[15]).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("the 16th connection: %q, %v; want 200", line, err)
	}
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 503") || !strings.Contains(string(b), "too many connections from 127.0.0.1 (at most 16)") {
		t.Fatalf("the 17th connection: %q, want 503 too many connections from 127.0.0.1 (at most 16)", b)
	}
}
