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

func waitEvent(t *testing.T, ev <-chan Event, s Spec, healthy bool) Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.Spec == s && e.Healthy == healthy {
				return e
			}
		case <-deadline:
			t.Fatalf("no event %s healthy=%v within 5s", s.Dest, healthy)
		}
	}
}

func status(c *Checker, s Spec) Status {
	st, _ := c.Status(s)
	return st
}

func waitChecks(t *testing.T, c *Checker, s Spec, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if status(c, s).Checks >= n {
			return
		}
	}
	t.Fatalf("%s: fewer than %d checks within 5s", s.Dest, n)
}

func add(t *testing.T, c *Checker, specs ...Spec) {
	t.Helper()
	if err := c.Update(specs, nil, false); err != nil {
		t.Fatal(err)
	}
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
	b1 := spec(TypeTCP, dest)
	add(t, c, b1)
	waitChecks(t, c, b1, 2)
	if st := status(c, b1); !st.Healthy || st.Failures != 0 {
		t.Fatalf("listening backend: %+v", st)
	}
	ln.Close() // the backend dies: connections are refused
	e := waitEvent(t, ev, b1, false)
	if e.Reason == "" {
		t.Fatal("unhealthy event without a reason")
	}
	if st := status(c, b1); st.Failures < 3 {
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
	waitEvent(t, ev, b1, true)
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
	add(t, c, s)
	waitChecks(t, c, s, 1)
	if got, _ := host.Load().(string); got != "vip.example/healthz" {
		t.Fatalf("probe asked for %q", got)
	}
	code.Store(503)
	e := waitEvent(t, ev, s, false)
	if e.Reason == "" {
		t.Fatal("no reason")
	}
	code.Store(204)
	waitEvent(t, ev, s, true)
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
	s := spec(TypeHTTP, netip.MustParseAddrPort(ln.Addr().String()))
	add(t, c, s)
	waitEvent(t, ev, s, false)
}

// A target added unknown is decided by `fall` consecutive failures (one
// failed probe right after a restart must not take out a backend the data
// plane still serves with), or at once by its first success, and reports
// the decision.
func TestUnknownTargetDecision(t *testing.T) {
	c, ev := newChecker(t)
	down := spec(TypeTCP, netip.MustParseAddrPort("127.0.0.1:9")) // discard: nothing listens
	if err := c.Update([]Spec{down}, nil, true); err != nil {
		t.Fatal(err)
	}
	if st := status(c, down); st.Known {
		t.Fatalf("before any probe: %+v, want unknown", st)
	}
	e := waitEvent(t, ev, down, false)
	if st := status(c, down); !st.Known || st.Healthy || st.Failures != uint64(down.Fall) || e.Reason == "" {
		t.Fatalf("decided: %+v (event %+v), want known unhealthy after exactly %d failures", st, e, down.Fall)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	up := spec(TypeTCP, netip.MustParseAddrPort(ln.Addr().String()))
	if err := c.Update([]Spec{up}, nil, true); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, up, true)
	if st := status(c, up); !st.Known || !st.Healthy || st.Checks != 1 {
		t.Fatalf("after the first successful probe: %+v, want known healthy after one check", st)
	}
}

func TestUpdateDeduplicatesAndValidates(t *testing.T) {
	c, _ := newChecker(t)
	a := spec(TypeNone, netip.MustParseAddrPort("127.0.0.1:9"))
	b := spec(TypeNone, netip.MustParseAddrPort("127.0.0.2:9"))
	add(t, c, a, b, a) // a twice: one target
	if n := c.Len(); n != 2 {
		t.Fatalf("%d targets, want 2", n)
	}
	bad := spec(TypeTCP, a.Dest)
	bad.Timeout = time.Second // above the interval
	if err := c.Update([]Spec{bad}, []Spec{b}, false); err == nil {
		t.Fatal("invalid spec accepted")
	}
	if n := c.Len(); n != 2 {
		t.Fatalf("a rejected Update changed the targets: %d", n)
	}
	if err := c.Update(nil, []Spec{b}, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Status(b); ok || c.Len() != 1 || !status(c, a).Healthy {
		t.Fatalf("after removing b: %d targets, a %+v", c.Len(), status(c, a))
	}
}

// Probes run at a fixed rate: one is due an interval after the one before
// was, however long that took, so fall x interval bounds how long a dead
// target stays healthy; a probe that overran its slot skips it.
func TestNextProbe(t *testing.T) {
	t0 := time.Unix(1000, 0)
	iv := 300 * time.Millisecond
	for _, c := range []struct {
		now  time.Duration
		want time.Duration
	}{
		{10 * time.Millisecond, 300 * time.Millisecond},  // a quick probe: the next slot
		{299 * time.Millisecond, 300 * time.Millisecond}, // a slow one, still in time
		{300 * time.Millisecond, 600 * time.Millisecond}, // overran its slot: the one after
		{950 * time.Millisecond, 1200 * time.Millisecond},
	} {
		if got := nextProbe(t0, t0.Add(c.now), iv).Sub(t0); got != c.want {
			t.Errorf("probe due at 0 ended at %s: next due at %s, want %s", c.now, got, c.want)
		}
	}
}
