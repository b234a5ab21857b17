package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
)

// fakeLB is a daemon with two services on one VIP and one on another.
type fakeLB struct{ noDataPlane bool }

func (fakeLB) Status() api.Status                      { return api.Status{State: api.StateRunning} }
func (fakeLB) Reload(context.Context) api.ReloadResult { return api.ReloadResult{OK: true} }
func (fakeLB) Config() *config.Config                  { return config.Default() }
func (fakeLB) SetLogLevel(string) error                { return nil }
func (fakeLB) LBDrain(api.LBDrain) error               { return nil }

// LBServices serves fakeServices like the daemon: selection, pages of
// limit (after a name), backends only when asked, counters only with a
// data plane.
func (f fakeLB) LBServices(q api.LBServiceQuery) (api.LBServiceList, error) {
	out := api.LBServiceList{Services: []api.LBService{}}
	started := q.After == ""
	for _, s := range fakeServices() {
		if !started {
			started = s.Name == q.After
			continue
		}
		if !q.Matches(s.Name, s.VIP, s.Port, s.Protocol) {
			continue
		}
		if q.Limit > 0 && len(out.Services) == q.Limit {
			out.Next = out.Services[len(out.Services)-1].Name
			break
		}
		if !q.Backends {
			s.Backends = nil
		}
		if f.noDataPlane {
			s.Packets, s.Bytes = nil, nil
			for i := range s.Backends {
				s.Backends[i].Packets, s.Backends[i].Bytes = nil, nil
			}
		}
		out.Services = append(out.Services, s)
	}
	return out, nil
}

func (f fakeLB) LBStats(q api.LBServiceQuery) (api.LBStats, error) {
	if f.noDataPlane {
		return api.LBStats{}, api.ErrNotConfigured
	}
	st := api.LBStats{Events: map[string]uint64{"ct_hit": 7, "ct_miss": 3}, Drops: map[string]uint64{"no_backend": 1}}
	selected := q.VIP != nil || q.Name != ""
	if selected {
		st = api.LBStats{}
	}
	for _, s := range fakeServices() {
		if !q.Matches(s.Name, s.VIP, s.Port, s.Protocol) {
			continue
		}
		ss := api.LBServiceStats{Name: s.Name, VIP: s.VIP, Port: s.Port, Protocol: s.Protocol, Packets: *s.Packets, Bytes: *s.Bytes}
		for _, b := range s.Backends {
			if selected {
				ss.Backends = append(ss.Backends, api.LBBackendStats{Address: b.Address, Packets: *b.Packets, Bytes: *b.Bytes})
			}
		}
		st.Services = append(st.Services, ss)
	}
	return st, nil
}

func fakeServices() []api.LBService {
	vip := netip.MustParseAddr("fd00:300::10")
	svc := func(name string, vip netip.Addr, port int, proto string, addrs ...string) api.LBService {
		s := api.LBService{Name: name, VIP: vip, Port: port, Protocol: proto, Serving: true, Usable: len(addrs), Total: len(addrs)}
		var p, by uint64
		for i, a := range addrs {
			n := uint64(10*port + i)
			p, by = p+n, by+100*n
			s.Backends = append(s.Backends, api.LBBackendState{Address: netip.MustParseAddr(a), Weight: 100,
				Health: api.LBHealth{Healthy: true, Known: true}, Packets: &n, Bytes: ptr(100 * n)})
		}
		s.Packets, s.Bytes = &p, &by
		return s
	}
	return []api.LBService{
		svc("web", vip, 443, "tcp", "fd00:100::1", "fd00:100::2"),
		svc("dns", vip, 53, "udp", "fd00:100::3"),
		svc("other", netip.MustParseAddr("192.0.2.10"), 80, "tcp", "fd00:100::4"),
	}
}

func ptr(v uint64) *uint64 { return &v }

func serveFake(t *testing.T, b api.Backend) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "aird.sock")
	s := api.NewServer(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.ListenUnix(api.UnixOptions{Path: sock, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return sock
}

func TestLBStatsTableAndJSON(t *testing.T) {
	sock := serveFake(t, fakeLB{})
	out, errs, code := runCLI("--socket", sock, "lb", "stats")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"event  ct_hit", "drop   no_backend  1", "SERVICE  VIP           PORT  PROTO  PACKETS  BYTES",
		"web      fd00:300::10  443   tcp    8861     886100", "other    192.0.2.10    80    tcp    800      80000"} {
		if !strings.Contains(out, want) {
			t.Errorf("lb stats lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "BACKEND") {
		t.Errorf("lb stats without --vip lists backends:\n%s", out)
	}

	out, _, code = runCLI("--socket", sock, "lb", "stats", "--vip", "fd00:300::10")
	if code != 0 || strings.Contains(out, "ct_hit") || strings.Contains(out, "other") ||
		!strings.Contains(out, "dns      fd00:300::10  53    udp    530      53000") || !strings.Contains(out, "web      fd00:100::2  4431     443100") {
		t.Fatalf("lb stats --vip: exit %d\n%s", code, out)
	}

	out, _, code = runCLI("--socket", sock, "lb", "stats", "--vip", "[fd00:300::10]:443/tcp", "-o", "json")
	var st api.LBStats
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || len(st.Services) != 1 || st.Services[0].Name != "web" ||
		len(st.Services[0].Backends) != 2 || st.Services[0].Backends[1].Bytes != 443100 || st.Events != nil {
		t.Fatalf("lb stats --vip -o json: exit %d, %+v, %v\n%s", code, st, err, out)
	}
	out, _, _ = runCLI("--socket", sock, "lb", "stats", "-o", "json")
	st = api.LBStats{}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Services) != 3 || st.Events["ct_hit"] != 7 || st.Drops["no_backend"] != 1 {
		t.Fatalf("lb stats -o json: %+v, %v\n%s", st, err, out)
	}
}

func TestLBStatsBadVIP(t *testing.T) {
	sock := serveFake(t, fakeLB{})
	for vip, msg := range map[string]string{
		"nonsense":               `bad VIP "nonsense"`,
		"fd00:300::10/64":        `protocol "64" is not tcp or udp`,
		"[fd00:300::10]:99999":   `port "99999"`,
		"fd00:300::99":           "no service on VIP fd00:300::99",
		"[fd00:300::10]:443/udp": "no service on VIP [fd00:300::10]:443/udp",
	} {
		out, errs, code := runCLI("--socket", sock, "lb", "stats", "--vip", vip)
		if code == 0 || !strings.Contains(errs, msg) || out != "" {
			t.Errorf("--vip %s: exit %d, stdout %q, stderr %q; want a non-zero exit saying %q", vip, code, out, errs, msg)
		}
	}
	// A malformed VIP is refused before the daemon is asked.
	_, errs, code := runCLI("--socket", filepath.Join(t.TempDir(), "none.sock"), "lb", "stats", "--vip", "x")
	if code == 0 || !strings.Contains(errs, "bad VIP") {
		t.Errorf("without a daemon: exit %d, %q", code, errs)
	}
}

func TestLBBackendsTraffic(t *testing.T) {
	sock := serveFake(t, fakeLB{})
	out, errs, code := runCLI("--socket", sock, "lb", "backends", "[fd00:300::10]:443/tcp")
	if code != 0 || !strings.Contains(out, "PACKETS  BYTES") || !strings.Contains(out, "4430     443000") || strings.Contains(out, "dns") {
		t.Fatalf("lb backends VIP:PORT/PROTO: exit %d %s\n%s", code, errs, out)
	}
	out, _, code = runCLI("--socket", sock, "lb", "backends", "dns", "-o", "json")
	var ss []struct {
		Name     string `json:"name"`
		Backends []struct {
			Address netip.Addr `json:"address"`
			Weight  int        `json:"weight"`
			Packets *uint64    `json:"packets"`
			Bytes   *uint64    `json:"bytes"`
		} `json:"backends"`
	}
	if err := json.Unmarshal([]byte(out), &ss); err != nil || code != 0 || len(ss) != 1 || ss[0].Backends[0].Weight != 100 ||
		ss[0].Backends[0].Packets == nil || *ss[0].Backends[0].Packets != 530 || *ss[0].Backends[0].Bytes != 53000 {
		t.Fatalf("lb backends -o json: exit %d, %+v, %v\n%s", code, ss, err, out)
	}
	if _, errs, code := runCLI("--socket", sock, "lb", "backends", "fd00:300::99"); code == 0 || !strings.Contains(errs, `no service or VIP "fd00:300::99"`) {
		t.Errorf("unknown VIP: exit %d, %q", code, errs)
	}

	// Without a data plane the counters are unknown, not zero.
	sock = serveFake(t, fakeLB{noDataPlane: true})
	out, errs, code = runCLI("--socket", sock, "lb", "backends")
	if code != 0 || !strings.Contains(out, "fd00:100::4") || !strings.Contains(out, "-        -") {
		t.Fatalf("lb backends without a data plane: exit %d %s\n%s", code, errs, out)
	}
	out, _, _ = runCLI("--socket", sock, "lb", "backends", "-o", "json")
	if strings.Contains(out, "packets") {
		t.Errorf("-o json without a data plane carries counters:\n%s", out)
	}
}
