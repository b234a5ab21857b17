package api

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseVIPSelector(t *testing.T) {
	a6, a4 := netip.MustParseAddr("fd00:300::10"), netip.MustParseAddr("192.0.2.10")
	good := []struct {
		in   string
		want VIPSelector
	}{
		{"fd00:300::10", VIPSelector{Addr: a6, Port: -1}},
		{"[fd00:300::10]", VIPSelector{Addr: a6, Port: -1}},
		{"192.0.2.10", VIPSelector{Addr: a4, Port: -1}},
		{"::ffff:192.0.2.10", VIPSelector{Addr: a4, Port: -1}},
		{"[fd00:300::10]:443/tcp", VIPSelector{Addr: a6, Port: 443, Protocol: "tcp"}},
		{"[fd00:300::10]:53", VIPSelector{Addr: a6, Port: 53}},
		{"192.0.2.10:53/udp", VIPSelector{Addr: a4, Port: 53, Protocol: "udp"}},
		{"192.0.2.10:any/tcp", VIPSelector{Addr: a4, Port: 0, Protocol: "tcp"}},
		{"fd00:300::10/udp", VIPSelector{Addr: a6, Port: -1, Protocol: "udp"}},
	}
	for _, tc := range good {
		got, err := ParseVIPSelector(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseVIPSelector(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if again, err := ParseVIPSelector(got.String()); err != nil || again != got {
			t.Errorf("%q: String() %q does not parse back: %+v, %v", tc.in, got.String(), again, err)
		}
	}
	for _, in := range []string{"", "web", "fd00:300::10/64", "192.0.2.10:http/tcp", "192.0.2.10:70000", "192.0.2.10:",
		"[fd00:300::10]:443/sctp", "fe80::1%eth0", "300.1.1.1", "[fd00:300::10]:443/tcp/x"} {
		if sel, err := ParseVIPSelector(in); err == nil || !strings.Contains(err.Error(), "bad VIP") {
			t.Errorf("ParseVIPSelector(%q) = %+v, %v; want a bad VIP error", in, sel, err)
		}
	}
}

// lbFake serves fixed load-balancer stats.
type lbFake struct {
	fakeBackend
	stats   LBStats
	queries []LBServiceQuery
}

func (f *lbFake) LBServices(q LBServiceQuery) (LBServiceList, error) {
	f.queries = append(f.queries, q)
	return LBServiceList{Services: []LBService{}}, nil
}
func (f *lbFake) LBDrain(LBDrain) error { return nil }

// LBStats selects like the daemon: a selection drops the node-wide totals.
func (f *lbFake) LBStats(q LBServiceQuery) (LBStats, error) {
	if q.VIP == nil && q.Name == "" {
		return f.stats, nil
	}
	out := LBStats{Services: []LBServiceStats{}}
	for _, s := range f.stats.Services {
		if q.Matches(s.Name, s.VIP, s.Port, s.Protocol) {
			out.Services = append(out.Services, s)
		}
	}
	return out, nil
}

// The services endpoint parses its query, and refuses a malformed one.
func TestLBServicesQuery(t *testing.T) {
	f := &lbFake{}
	c, _ := serve(t, f)
	ctx := context.Background()
	sel, _ := ParseVIPSelector("[fd00:300::10]:443/tcp")
	want := LBServiceQuery{Name: "web", VIP: &sel, After: "a b", Limit: 10, Backends: true}
	var l LBServiceList
	if err := c.Do(ctx, "GET", "/v1/lb/services?"+want.Values().Encode(), nil, &l); err != nil {
		t.Fatal(err)
	}
	if len(f.queries) != 1 || f.queries[0].Name != "web" || *f.queries[0].VIP != sel || f.queries[0].After != "a b" ||
		f.queries[0].Limit != 10 || !f.queries[0].Backends {
		t.Fatalf("queries %+v, want %+v", f.queries, want)
	}
	for _, q := range []string{"limit=-1", "limit=x", "limit=100001", "backends=maybe", "vip=web"} {
		err := c.Do(ctx, "GET", "/v1/lb/services?"+q, nil, nil)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 400 {
			t.Errorf("?%s: %v, want a 400", q, err)
		}
	}
	if len(f.queries) != 1 {
		t.Fatalf("malformed queries reached the daemon: %+v", f.queries[1:])
	}
}

func TestLBStatsForVIP(t *testing.T) {
	vip := netip.MustParseAddr("fd00:300::10")
	be := []LBBackendStats{{Address: netip.MustParseAddr("fd00:100::1"), Packets: 3, Bytes: 300}}
	f := &lbFake{stats: LBStats{Events: map[string]uint64{"ct_hit": 1}, Drops: map[string]uint64{"no_backend": 2}, Services: []LBServiceStats{
		{Name: "web", VIP: vip, Port: 443, Protocol: "tcp", Packets: 3, Bytes: 300, Backends: be},
		{Name: "dns", VIP: vip, Port: 53, Protocol: "udp", Backends: []LBBackendStats{}},
		{Name: "other", VIP: netip.MustParseAddr("fd00:300::11"), Port: 443, Protocol: "tcp", Backends: []LBBackendStats{}},
	}}}
	c, _ := serve(t, f)
	ctx := context.Background()
	var st LBStats
	if err := c.Do(ctx, "GET", "/v1/lb/stats", nil, &st); err != nil || len(st.Services) != 3 || st.Events["ct_hit"] != 1 {
		t.Fatalf("all stats: %+v, %v", st, err)
	}
	st = LBStats{}
	if err := c.Do(ctx, "GET", "/v1/lb/stats?vip=fd00:300::10", nil, &st); err != nil || len(st.Services) != 2 || st.Events != nil || st.Drops != nil {
		t.Fatalf("one VIP: %+v, %v; want its two services and no node-wide totals", st, err)
	}
	st = LBStats{}
	if err := c.Do(ctx, "GET", "/v1/lb/stats?vip=%5Bfd00:300::10%5D:443/tcp", nil, &st); err != nil || len(st.Services) != 1 ||
		st.Services[0].Name != "web" || st.Services[0].Backends[0].Packets != 3 {
		t.Fatalf("one service: %+v, %v", st, err)
	}
	for q, msg := range map[string]string{"vip=nonsense": "bad VIP", "vip=": "bad VIP", "vip=fd00:300::99": "no service on VIP fd00:300::99",
		"vip=%5Bfd00:300::10%5D:443/udp": "no service on VIP"} {
		err := c.Do(ctx, "GET", "/v1/lb/stats?"+q, nil, nil)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 400 || !strings.Contains(se.Body.Error, msg) {
			t.Errorf("?%s: %v, want a 400 saying %q", q, err, msg)
		}
	}
}
