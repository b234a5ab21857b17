package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAirctlAgainstDaemon drives airctl against a real aird: `config show`
// in TOML loads as a configuration file, the dynamic completions offer the
// running services, backends and neighbours, and the exit statuses tell a
// refused request (1) from an unreachable daemon (3).
func TestAirctlAgainstDaemon(t *testing.T) {
	n := newNode(t)
	n.writeConfig(n.bgpConfig())
	n.start()

	shown, errs, code := n.airctl("config", "show")
	if code != 0 {
		t.Fatalf("airctl config show: exit %d: %s", code, errs)
	}
	for _, want := range []string{"[node]\n", "pin-path = ", "[[bgp.peers]]\nname = \"tor\"\n", "[[services]]\nname = \"web\"\n"} {
		if !strings.Contains(shown, want) {
			t.Errorf("airctl config show lacks %q:\n%s", want, shown)
		}
	}
	file := filepath.Join(t.TempDir(), "shown.toml")
	if err := os.WriteFile(file, []byte(shown), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(n.aird, "--check-config", file).CombinedOutput(); err != nil {
		t.Errorf("the TOML of airctl config show does not check: %v\n%s\n%s", err, out, shown)
	}
	asJSON, _, code := n.airctl("config", "show", "-o", "json")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(asJSON), &v) != nil || v["node"] == nil {
		t.Errorf("airctl config show -o json: exit %d\n%s", code, asJSON)
	}

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"lb", "backends", ""}, []string{"web\tfd00:300::10 80/tcp"}},
		{[]string{"lb", "drain", "w"}, []string{"web\tfd00:300::10 80/tcp"}},
		{[]string{"lb", "drain", "web", ""}, []string{"fd00:100:1::21", "fd00:100:1::22"}},
		{[]string{"lb", "stats", "--vip", "fd00:3"}, []string{"fd00:300::10\tweb"}},
		{[]string{"bgp", "neighbors", ""}, []string{"tor\t"}},
		{[]string{"bgp", "routes", "received", "--neighbor", "t"}, []string{"tor\t"}},
	} {
		out, errs, code := n.airctl(append([]string{"__complete"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != len(tc.want)+1 || lines[len(lines)-1] != ":4" {
			t.Errorf("__complete %q: exit %d %s\n%s", tc.args, code, errs, out)
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(lines[i], w) {
				t.Errorf("__complete %q: line %d is %q, want %q", tc.args, i, lines[i], w)
			}
		}
	}

	if _, errs, code := n.airctl("lb", "backends", "nosuch"); code != 1 || !strings.Contains(errs, `no service or VIP "nosuch"`) {
		t.Errorf("lb backends nosuch: exit %d, %q; want 1", code, errs)
	}
	n.stop()
	if _, errs, code := n.airctl("status"); code != 3 || !strings.Contains(errs, "aird is not running") {
		t.Errorf("status with aird stopped: exit %d, %q; want 3", code, errs)
	}
}

// TestEndpointCompletion: endpoint names complete from the running aird.
func TestEndpointCompletion(t *testing.T) {
	n := endpointNode(t)
	n.start()
	n.addContainer("web1")
	for _, args := range [][]string{{"endpoint", "show", ""}, {"endpoint", "del", "w"}} {
		out, errs, code := n.airctl(append([]string{"__complete"}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "web1\t") || lines[1] != ":4" {
			t.Errorf("__complete %q: exit %d %s\n%s", args, code, errs, out)
		}
	}
}
