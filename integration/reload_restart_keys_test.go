package integration

import (
	"strings"
	"testing"
)

// TestReloadRefusesRestartKeys: a reload that changes a key
// docs/configuration.md marks "restart" (datapath.pin-path,
// datapath.xdp-mode, the lb map sizes; bgp.asn, router-id, listen-port)
// is rejected with that reason,
// changes nothing and keeps the data plane attached; restoring the file
// reloads cleanly.
func TestReloadRefusesRestartKeys(t *testing.T) {
	n := newNode(t)
	base := n.config("info", "uplink0")
	n.writeConfig(base)
	n.start()
	good := n.runningConfig()
	for _, c := range []struct{ name, file, key string }{
		{"xdp-mode", strings.Replace(base, "[datapath]\n", "[datapath]\nxdp-mode = \"generic\"\n", 1), "datapath.xdp-mode"},
		{"pin-path", strings.Replace(base, n.pinPath, n.pinPath+"-other", 1), "datapath.pin-path"},
		{"max-vips", base + "\n[lb]\nmax-vips = 1024\n", "lb.max-vips"},
		{"max-backends", base + "\n[lb]\nmax-backends = 1024\n", "lb.max-backends"},
		{"conntrack-size", base + "\n[lb]\nconntrack-size = 4096\n", "lb.conntrack-size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n.writeConfig(c.file)
			_, errs, code := n.airctl("reload")
			if code != 1 || !strings.Contains(errs, c.key) || !strings.Contains(errs, "take effect at restart") {
				t.Fatalf("airctl reload: exit %d, want 1 naming %s and \"take effect at restart\":\n%s", code, c.key, errs)
			}
			st := n.status()
			if st.State != "running" || st.Config.Generation != 1 || st.LastReload == nil || st.LastReload.OK ||
				!strings.Contains(st.LastReload.Error, c.key) {
				t.Fatalf("after the rejected reload: state %q, generation %d, last reload %+v", st.State, st.Config.Generation, st.LastReload)
			}
			if now := n.runningConfig(); now != good {
				t.Fatalf("running config changed by a rejected reload:\n%s\nwas\n%s", now, good)
			}
			if !n.attachedXDP("uplink0") {
				t.Fatal("uplink0 lost its XDP program")
			}
		})
	}
	n.writeConfig(base)
	if _, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload of the original file: exit %d: %s", code, errs)
	}

	// [bgp]'s asn, router-id and listen-port take effect at restart too.
	withBGP := base + "\n[bgp]\nasn = 65001\nlisten-port = 0\n"
	n.writeConfig(withBGP)
	if _, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload adding [bgp]: exit %d: %s", code, errs)
	}
	running := n.runningConfig()
	for _, c := range []struct{ name, file, what string }{
		{"asn", strings.Replace(withBGP, "asn = 65001", "asn = 65002", 1), "asn 65001 -> 65002"},
		{"router-id", withBGP + "router-id = \"10.255.0.9\"\n", "router-id 10.255.0.1 -> 10.255.0.9"},
		{"listen-port", strings.Replace(withBGP, "listen-port = 0", "listen-port = 1179", 1), "listen-port 0 -> 1179"},
	} {
		t.Run("bgp "+c.name, func(t *testing.T) {
			n.writeConfig(c.file)
			_, errs, code := n.airctl("reload")
			if code != 1 || !strings.Contains(errs, c.what) || !strings.Contains(errs, "restart") {
				t.Fatalf("airctl reload: exit %d, want 1 naming %q and a restart:\n%s", code, c.what, errs)
			}
			if now := n.runningConfig(); now != running {
				t.Fatalf("running config changed by a rejected reload:\n%s\nwas\n%s", now, running)
			}
		})
	}
}
