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
	"github.com/aird-net/aird/lb"
)

// fakeLB is a daemon with two services on one VIP and one on another.
type fakeLB struct{ noDataPlane bool }

func (fakeLB) Status() api.Status                        { return api.Status{State: api.StateRunning} }
func (fakeLB) Reload(context.Context) api.ReloadResult   { return api.ReloadResult{OK: true} }
func (fakeLB) Config() *config.Config                    { return config.Default() }
func (fakeLB) SetLogLevel(string) error                  { return nil }
func (fakeLB) LBDrain(api.LBDrain) error                 { return nil }
func (f fakeLB) LBServices() ([]lb.ServiceStatus, error) { return fakeServices(), nil }
func (f fakeLB) LBStats() (api.LBStats, error) {
	if f.noDataPlane {
		return api.LBStats{}, api.ErrNotConfigured
	}
	st := api.LBStats{Events: map[string]uint64{"ct_hit": 7, "ct_miss": 3}, Drops: map[string]uint64{"no_backend": 1}}
	for _, s := range fakeServices() {
		ss := api.LBServiceStats{Name: s.Name, VIP: s.VIP, Port: s.Port, Protocol: s.Protocol}
		for i, b := range s.Backends {
			n := uint64(10*s.Port + i)
			ss.Backends = append(ss.Backends, api.LBBackendStats{Address: b.Address, Packets: n, Bytes: 100 * n})
			ss.Packets, ss.Bytes = ss.Packets+n, ss.Bytes+100*n
		}
		st.Services = append(st.Services, ss)
	}
	return st, nil
}

func fakeServices() []lb.ServiceStatus {
	vip := netip.MustParseAddr("fd00:300::10")
	bes := func(addrs ...string) []lb.BackendStatus {
		var out []lb.BackendStatus
		for _, a := range addrs {
			out = append(out, lb.BackendStatus{Address: netip.MustParseAddr(a), Weight: 100})
		}
		return out
	}
	return []lb.ServiceStatus{
		{Name: "web", VIP: vip, Port: 443, Protocol: "tcp", Backends: bes("fd00:100::1", "fd00:100::2")},
		{Name: "dns", VIP: vip, Port: 53, Protocol: "udp", Backends: bes("fd00:100::3")},
		{Name: "other", VIP: netip.MustParseAddr("192.0.2.10"), Port: 80, Protocol: "tcp", Backends: bes("fd00:100::4")},
	}
}

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
