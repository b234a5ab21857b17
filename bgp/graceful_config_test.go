package bgp

import (
	"strings"
	"testing"
)

// TestGracefulRestartKeys: [bgp.graceful-restart] reaches every peer's
// GoBGP configuration: enabled = false announces no graceful restart (no
// capability, no per-family flag), restart-time is the time announced.
func TestGracefulRestartKeys(t *testing.T) {
	for _, c := range []struct {
		table   string
		enabled bool
		time    uint32
	}{
		{"", true, 120},
		{"graceful-restart = { restart-time = \"300s\" }\n", true, 300},
		{"graceful-restart = { enabled = false }\n", false, 0},
	} {
		src := strings.Replace(unitTOML, "[bgp]\nasn = 65001\n", "[bgp]\nasn = 65001\n"+c.table, 1)
		peers, err := buildPeers(parseConfig(t, src).BGP)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			ap := p.session.apiPeer(false)
			if got := ap.GracefulRestart != nil; got != c.enabled {
				t.Errorf("%q: peer %s announces graceful restart: %v, want %v", c.table, p.name, got, c.enabled)
				continue
			}
			if c.enabled && ap.GracefulRestart.RestartTime != c.time {
				t.Errorf("%q: peer %s restart time %d, want %d", c.table, p.name, ap.GracefulRestart.RestartTime, c.time)
			}
			for _, af := range ap.AfiSafis {
				if af.MpGracefulRestart.Config.Enabled != c.enabled {
					t.Errorf("%q: peer %s family %v graceful restart %v, want %v", c.table, p.name, af.Config.Family, af.MpGracefulRestart.Config.Enabled, c.enabled)
				}
			}
		}
	}
}

// TestListenPortZero: listen-port 0 gives GoBGP no listener (its -1);
// another port is listened on as written.
func TestListenPortZero(t *testing.T) {
	for src, want := range map[string]int32{
		"[bgp]\nasn = 65001\n":                     179,
		"[bgp]\nasn = 65001\nlisten-port = 0\n":    -1,
		"[bgp]\nasn = 65001\nlisten-port = 1179\n": 1179,
	} {
		c := parseConfig(t, "[node]\nrouter-id = \"10.0.0.1\"\nunderlay = [\"fd00::2\"]\n"+src)
		if got := globalConfig(c.BGP).ListenPort; got != want {
			t.Errorf("%q: GoBGP listen port %d, want %d", src, got, want)
		}
	}
}

// TestNoAddPath: aird configures ADD-PATH for no peer and family
// (docs/configuration.md, [bgp]: no path identifiers are sent).
func TestNoAddPath(t *testing.T) {
	peers, err := buildPeers(parseConfig(t, unitTOML).BGP)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		for _, af := range p.session.apiPeer(false).AfiSafis {
			if af.AddPaths != nil {
				t.Errorf("peer %s family %v: ADD-PATH configured: %v", p.name, af.Config.Family, af.AddPaths)
			}
		}
	}
}
