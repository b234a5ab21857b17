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
)

func newChecker(t *testing.T) (*Checker, chan Event) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ev := make(chan Event, 16)
	c, err := New(ctx, Options{Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	return c, ev
}

func spec(typ string, dest netip.AddrPort) Spec {
	return Spec{Type: typ, Dest: dest, Path: "/healthz", StatusMin: 200, StatusMax: 299,
		Interval: 100 * time.Millisecond, Timeout: 90 * time.Millisecond, Rise: 2, Fall: 3}
}

func waitEvent(t *testing.T, ev <-chan Event, key string, healthy bool) Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.Key == key && e.Healthy == healthy {
				return e
			}
		case <-deadline:
			t.Fatalf("no event %s healthy=%v within 5s", key, healthy)
		}
	}
}

func waitChecks(t *testing.T, c *Checker, key string, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c.Status()[key].Checks >= n {
			return
		}
	}
	t.Fatalf("%s: fewer than %d checks within 5s", key, n)
}

func TestTCPCheckFallAndRise(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dest := netip.MustParseAddrPort(ln.Addr().String())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c, ev := newChecker(t)
	if err := c.Set(map[string]Spec{"b1": spec(TypeTCP, dest)}); err != nil {
		t.Fatal(err)
	}
	waitChecks(t, c, "b1", 2)
	if st := c.Status()["b1"]; !st.Healthy || st.Failures != 0 {
		t.Fatalf("listening backend: %+v", st)
	}
	ln.Close() // the backend dies: connections are refused
	e := waitEvent(t, ev, "b1", false)
	if e.Reason == "" {
		t.Fatal("unhealthy event without a reason")
	}
	if st := c.Status()["b1"]; st.Failures < 3 {
		t.Fatalf("went down after %d failures, fall is 3", st.Failures)
	}
	ln2, err := net.Listen("tcp", dest.String()) // back on the same port
	if err != nil {
		t.Skipf("port reuse failed: %v", err)
	}
	defer ln2.Close()
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	waitEvent(t, ev, "b1", true)
}

func TestHTTPCheckStatusRange(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	var host atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host + r.URL.Path)
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	dest := netip.MustParseAddrPort(srv.Listener.Addr().String())
	c, ev := newChecker(t)
	s := spec(TypeHTTP, dest)
	s.Host = "vip.example"
	if err := c.Set(map[string]Spec{"b1": s}); err != nil {
		t.Fatal(err)
	}
	waitChecks(t, c, "b1", 1)
	if got, _ := host.Load().(string); got != "vip.example/healthz" {
		t.Fatalf("probe asked for %q", got)
	}
	code.Store(503)
	e := waitEvent(t, ev, "b1", false)
	if e.Reason == "" {
		t.Fatal("no reason")
	}
	code.Store(204)
	waitEvent(t, ev, "b1", true)
}

func TestTimeoutCountsAsFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Accepts but never answers: an HTTP check must time out.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c, ev := newChecker(t)
	if err := c.Set(map[string]Spec{"b1": spec(TypeHTTP, netip.MustParseAddrPort(ln.Addr().String()))}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, "b1", false)
}

func TestSetReconcilesAndValidates(t *testing.T) {
	c, _ := newChecker(t)
	dest := netip.MustParseAddrPort("127.0.0.1:9")
	if err := c.Set(map[string]Spec{"a": spec(TypeNone, dest), "b": spec(TypeNone, dest)}); err != nil {
		t.Fatal(err)
	}
	bad := spec(TypeTCP, dest)
	bad.Timeout = time.Second // above the interval
	if err := c.Set(map[string]Spec{"a": spec(TypeNone, dest), "c": bad}); err == nil {
		t.Fatal("invalid spec accepted")
	}
	if st := c.Status(); len(st) != 2 {
		t.Fatalf("a rejected Set changed the targets: %v", st)
	}
	if err := c.Set(map[string]Spec{"a": spec(TypeNone, dest)}); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); len(st) != 1 || !st["a"].Healthy {
		t.Fatalf("after removing b: %v", st)
	}
}
