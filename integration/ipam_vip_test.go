package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/ipam"
)

const vipPoolsTOML = `
[[ipam.pools]]
name = "services"
kind = "service"
prefixes = ["fd00:250::/120", "10.250.0.0/24"]
`

func vipService(name, extra, backend string) string {
	return "\n[[services]]\nname = \"" + name + "\"\nport = 80\n" + extra +
		"health-check = { type = \"none\" }\nbackends = [{ address = \"" + backend + "\" }]\n"
}

// TestServiceVIPsFromPools gives services without vip addresses from a
// service pool and checks they stay put across reloads, restarts and
// SIGKILL, that an explicit VIP is never handed out, and that a reload
// whose explicit VIP another service holds is rejected without change.
func TestServiceVIPsFromPools(t *testing.T) {
	n := newNode(t)
	base := n.config("info", "uplink0") + vipPoolsTOML +
		vipService("dns", "vip = \"fd00:250::1\"\n", "fd00:100:1::2") +
		vipService("web", "", "fd00:100:1::2") +
		vipService("web4", "", "10.100.1.2")
	n.writeConfig(base)
	n.start()
	want := map[string]string{"dns": "fd00:250::1", "web": "fd00:250::2", "web4": "10.250.0.1"}
	n.checkVIPs(t, want)
	// airctl config show marks the allocated VIPs (docs/configuration.md).
	out, errs, code := n.airctl("config", "show", "-o", "json")
	var shown struct {
		Services []struct {
			Name         string `json:"name"`
			VIP          string `json:"vip"`
			VIPAllocated bool   `json:"vip_allocated"`
		} `json:"services"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || len(shown.Services) != 3 {
		t.Fatalf("airctl config show -o json: exit %d %s\n%s", code, errs, out)
	}
	for _, s := range shown.Services {
		if s.VIP != want[s.Name] || s.VIPAllocated != (s.Name != "dns") {
			t.Errorf("config show: service %s vip %s vip_allocated %v; want %s, allocated unless explicit", s.Name, s.VIP, s.VIPAllocated, want[s.Name])
		}
	}
	allocs := n.ipamAllocations(t, "services")
	reserved := map[string]bool{}
	for _, al := range allocs {
		reserved[al.Owner] = al.Reserved
	}
	if len(allocs) != 3 || !reserved["service/dns"] || reserved["service/web"] || reserved["service/web4"] {
		t.Fatalf("allocations in the services pool %+v, want dns (reserved), web, web4", allocs)
	}

	t.Run("reload adds a service; the others keep their VIPs", func(t *testing.T) {
		n.writeConfig(base + vipService("api", "", "fd00:100:1::2"))
		n.reloadOK(t)
		want["api"] = "fd00:250::3"
		n.checkVIPs(t, want)
		n.writeConfig(base + vipService("api", "", "fd00:100:1::2"))
		if changed := n.reloadOK(t); len(changed) != 0 {
			t.Fatalf("reloading the same file changed %v, want nothing", changed)
		}
	})
	t.Run("an explicit VIP another service holds is rejected", func(t *testing.T) {
		n.writeConfig(base + vipService("api", "", "fd00:100:1::2") + vipService("thief", "vip = \"fd00:250::2\"\n", "fd00:100:1::2"))
		out, errs, code := n.airctl("reload")
		if code == 0 || !strings.Contains(out+errs, "service/web") {
			t.Fatalf("reload onto web's VIP: exit %d, want a rejection naming service/web:\n%s%s", code, out, errs)
		}
		n.checkVIPs(t, want)
	})
	t.Run("restart and SIGKILL keep the VIPs", func(t *testing.T) {
		n.writeConfig(base + vipService("api", "", "fd00:100:1::2"))
		n.stopForRestart()
		n.start()
		n.checkVIPs(t, want)
		n.kill()
		n.start()
		n.checkVIPs(t, want)
	})
	t.Run("a removed service releases its VIP", func(t *testing.T) {
		n.writeConfig(n.config("info", "uplink0") + vipPoolsTOML + vipService("dns", "vip = \"fd00:250::1\"\n", "fd00:100:1::2") +
			vipService("web4", "", "10.100.1.2") + vipService("api", "", "fd00:100:1::2"))
		n.reloadOK(t)
		delete(want, "web")
		n.checkVIPs(t, want)
		for _, al := range n.ipamAllocations(t, "services") {
			if al.Owner == "service/web" {
				t.Fatalf("service/web still holds %s after it left the file", al.Addr)
			}
		}
	})
}

func (n *node) reloadOK(t *testing.T) []string {
	t.Helper()
	out, errs, code := n.airctl("reload")
	if code != 0 {
		t.Fatalf("airctl reload exited %d: %s%s", code, out, errs)
	}
	return n.status().LastReload.Changed
}

// checkVIPs compares airctl lb services with want (service -> VIP).
func (n *node) checkVIPs(t *testing.T, want map[string]string) {
	t.Helper()
	out, errs, code := n.airctl("lb", "services", "-o", "json")
	var ss []api.LBService
	if code != 0 || json.Unmarshal([]byte(out), &ss) != nil {
		t.Fatalf("airctl lb services: exit %d %s\n%s", code, errs, out)
	}
	got := map[string]string{}
	for _, s := range ss {
		got[s.Name] = s.VIP.String()
	}
	if len(got) != len(want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	for name, vip := range want {
		if got[name] != vip {
			t.Fatalf("service %s has VIP %s, want %s (all: %v)", name, got[name], vip, got)
		}
	}
	for _, al := range n.ipamAllocations(t, "services") {
		if name := strings.TrimPrefix(al.Owner, "service/"); want[name] != al.Addr.String() {
			t.Fatalf("the store says %s holds %s; lb says %v", al.Owner, al.Addr, got)
		}
	}
}

func (n *node) ipamAllocations(t *testing.T, pool string) []ipam.Allocation {
	t.Helper()
	out, errs, code := n.airctl("ipam", "allocations", pool, "-o", "json")
	var as []ipam.Allocation
	if code != 0 || json.Unmarshal([]byte(out), &as) != nil {
		t.Fatalf("airctl ipam allocations %s: exit %d %s\n%s", pool, code, errs, out)
	}
	return as
}
