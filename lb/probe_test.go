package lb

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/lb/health"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The path of each check: through the tunnel (to the VIP, from the
// underlay address of the VIP's family, marked with the backend's id)
// unless configured direct or impossible, and then with the reason.
func TestProbeSpecs(t *testing.T) {
	v6, v4 := netip.MustParseAddr("fd00:1::1"), netip.MustParseAddr("10.0.1.1")
	web := service("web", "fd00:300::10", 8080, "fd00:2::2", "fd00:3::2")
	web4 := service("web4", "10.200.0.10", 8081, "fd00:2::2")
	direct := service("direct", "fd00:300::11", 8080, "fd00:2::2")
	direct.HealthCheck.Via = health.ViaDirect
	none := service("none", "fd00:300::12", 8080, "fd00:2::2")
	none.HealthCheck.Type = health.TypeNone
	for _, s := range []*Service{&web, &web4} {
		s.HealthCheck.Via = health.ViaTunnel
	}
	all := []Service{web, web4, direct, none}

	type want struct {
		via, dest, source string
		id                uint32
		fallback          string // a part of Spec.Fallback; "" means none
	}
	tun := func(dest, src string, id uint32) want { return want{health.ViaTunnel, dest, src, id, ""} }
	dir := func(dest, why string) want { return want{health.ViaDirect, dest, "invalid IP", 0, why} }
	unchecked := want{"", "[fd00:2::2]:8080", "invalid IP", 0, ""}
	cases := []struct {
		name     string
		path     ProbePath
		want     map[string]want // by backend key
		warnings int             // services whose checks fall back
	}{
		{
			name: "tunnel, both families",
			path: ProbePath{Tunnel: true, Sources: []netip.Addr{v4, v6}},
			want: map[string]want{
				"web/fd00:2::2":    tun("[fd00:300::10]:8080", "fd00:1::1", 1),
				"web/fd00:3::2":    tun("[fd00:300::10]:8080", "fd00:1::1", 2),
				"web4/fd00:2::2":   tun("10.200.0.10:8081", "10.0.1.1", 1),
				"direct/fd00:2::2": dir("[fd00:2::2]:8080", ""),
				"none/fd00:2::2":   unchecked,
			},
		},
		{
			name: "no IPv4 underlay: the IPv4 VIP's checks go direct",
			path: ProbePath{Tunnel: true, Sources: []netip.Addr{v6}},
			want: map[string]want{
				"web/fd00:2::2":    tun("[fd00:300::10]:8080", "fd00:1::1", 1),
				"web/fd00:3::2":    tun("[fd00:300::10]:8080", "fd00:1::1", 2),
				"web4/fd00:2::2":   dir("[fd00:2::2]:8081", "node.underlay has no IPv4 address"),
				"direct/fd00:2::2": dir("[fd00:2::2]:8080", ""),
				"none/fd00:2::2":   unchecked,
			},
			warnings: 1,
		},
		{
			name: "no tunnel: everything direct, with the reason",
			path: ProbePath{Unavailable: "probe tunnel not set up: boom", Sources: []netip.Addr{v4, v6}},
			want: map[string]want{
				"web/fd00:2::2":    dir("[fd00:2::2]:8080", "probe tunnel not set up: boom"),
				"web/fd00:3::2":    dir("[fd00:3::2]:8080", "probe tunnel not set up: boom"),
				"web4/fd00:2::2":   dir("[fd00:2::2]:8081", "probe tunnel not set up: boom"),
				"direct/fd00:2::2": dir("[fd00:2::2]:8080", ""),
				"none/fd00:2::2":   unchecked,
			},
			warnings: 2,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			m, err := New(context.Background(), Options{OnServing: func([]netip.Addr) {},
				Logger: slog.New(slog.NewTextHandler(logs, nil)), Dataplane: &fakePlane{}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			m.SetProbePath(c.path)
			for i := 0; i < 2; i++ { // the second apply logs nothing new
				apply(t, m, all...)
				specs := map[string]health.Spec{}
				m.mu.Lock()
				for _, s := range m.svcs {
					for j, b := range s.Backends {
						if len(s.specs) > 0 {
							specs[s.Name+"/"+b.Address.String()] = s.specs[j]
						} else {
							specs[s.Name+"/"+b.Address.String()] = directSpec(&s.Service, b)
						}
					}
				}
				m.mu.Unlock()
				for k, w := range c.want {
					s := specs[k]
					if w.via == "" {
						if s.Via != health.ViaDirect || s.Type != health.TypeNone {
							t.Errorf("%s: %+v, want no check", k, s)
						}
						continue
					}
					var id uint32
					if s.Mark != 0 {
						if s.Mark&bpf.ProbeMarkMask != bpf.ProbeMarkMagic {
							t.Errorf("%s: mark %#x lacks the magic", k, s.Mark)
						}
						id = s.Mark &^ bpf.ProbeMarkMask
					}
					got := want{s.Via, s.Dest.String(), s.Source.String(), id, s.Fallback}
					if got.via != w.via || got.dest != w.dest || got.source != w.source || got.id != w.id ||
						!strings.Contains(s.Fallback, w.fallback) || (w.fallback == "") != (s.Fallback == "") {
						t.Errorf("%s: %+v, want %+v", k, got, w)
					}
				}
			}
			if n := strings.Count(logs.String(), "not through the tunnel"); n != c.warnings {
				t.Errorf("%d fallback warnings, want %d:\n%s", n, c.warnings, logs.String())
			}
		})
	}
}
