package lb

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aird-net/aird/lb/health"
)

// backendServer accepts TCP connections on addr until stopped.
func backendServer(t *testing.T, addr string) (stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return func() { ln.Close() }
}

func service(name, vip string, port int, backends ...string) Service {
	s := Service{Name: name, VIP: netip.MustParseAddr(vip), Port: 80, Protocol: "tcp"}
	s.HealthCheck = HealthCheck{Type: health.TypeTCP, Port: port, Interval: 80 * time.Millisecond,
		Timeout: 60 * time.Millisecond, Rise: 1, Fall: 2, Via: health.ViaDirect}
	for _, b := range backends {
		s.Backends = append(s.Backends, Backend{Address: netip.MustParseAddr(b), Weight: 100})
	}
	return s
}

func apply(t *testing.T, m *Manager, ss ...Service) {
	t.Helper()
	if err := m.Apply(Config{Services: ss, MaglevTableSize: testCap}); err != nil {
		t.Fatal(err)
	}
}

func newManager(t *testing.T) (*Manager, chan []netip.Addr) {
	t.Helper()
	ch := make(chan []netip.Addr, 32)
	m, err := New(context.Background(), Options{OnServing: func(v []netip.Addr) { ch <- v }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, ch
}

func waitServing(t *testing.T, ch chan []netip.Addr, want ...string) {
	t.Helper()
	w := make([]netip.Addr, len(want))
	for i, s := range want {
		w[i] = netip.MustParseAddr(s)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-ch:
			if slices.Equal(got, w) {
				return
			}
		case <-deadline:
			t.Fatalf("serving VIPs never became %v", want)
		}
	}
}

// A VIP serves while one backend is healthy; it stops when the last one
// fails and serves again when one recovers. Another VIP is unaffected.
func TestServingFollowsHealth(t *testing.T) {
	const port = 18080
	stop1 := backendServer(t, "127.0.0.1:18080")
	stop2 := backendServer(t, "127.0.0.2:18080")
	stop3 := backendServer(t, "127.0.0.3:18080")
	defer stop3()
	m, ch := newManager(t)
	apply(t, m, service("web", "fd00:300::10", port, "127.0.0.1", "127.0.0.2"),
		service("dns", "fd00:300::53", port, "127.0.0.3"))
	waitServing(t, ch, "fd00:300::10", "fd00:300::53")
	stop1()
	time.Sleep(400 * time.Millisecond)
	if got := m.Serving(); len(got) != 2 {
		t.Fatalf("one of two backends down withdrew the VIP: %v", got)
	}
	stop2()
	waitServing(t, ch, "fd00:300::53")
	stop2 = backendServer(t, "127.0.0.2:18080")
	defer stop2()
	waitServing(t, ch, "fd00:300::10", "fd00:300::53")
}

func TestDrainAndWeightZero(t *testing.T) {
	stop := backendServer(t, "127.0.0.4:18081")
	defer stop()
	m, ch := newManager(t)
	s := service("web", "fd00:300::10", 18081, "127.0.0.4")
	apply(t, m, s)
	waitServing(t, ch, "fd00:300::10")
	if err := m.SetDrained("web", netip.MustParseAddr("127.0.0.4"), true); err != nil {
		t.Fatal(err)
	}
	waitServing(t, ch)
	if err := m.SetDrained("web", netip.MustParseAddr("127.0.0.9"), true); err == nil {
		t.Fatal("draining an unknown backend succeeded")
	}
	if err := m.SetDrained("web", netip.MustParseAddr("127.0.0.4"), false); err != nil {
		t.Fatal(err)
	}
	waitServing(t, ch, "fd00:300::10")
	s = service("web", "fd00:300::10", 18081, "127.0.0.4") // Apply keeps the services it is given
	s.Backends[0].Weight = 0
	apply(t, m, s)
	waitServing(t, ch)
	l, err := m.Services(ServiceQuery{Backends: true})
	st := l.Services
	if err != nil || len(st) != 1 || st[0].Serving || st[0].Backends[0].Weight != 0 || !st[0].Backends[0].Health.Healthy {
		t.Fatalf("status: %+v, %v", st, err)
	}
}
