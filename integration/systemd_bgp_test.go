package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// sdBGPConfig is aird in the container peering with a BIRD ToR on the far
// end of host0.
const sdBGPConfig = `[node]
name = "nspawn-node"
router-id = "10.255.0.9"
underlay = ["fd00:100::9"]
uplinks = ["host0"]

[datapath]
pin-path = "/sys/fs/bpf/aird"

[api]
socket = "/run/aird/aird.sock"

[bgp]
asn = 65001
connect-retry = "1s"
[[bgp.peers]]
name = "tor"
address = "fd00:100::1"
asn = 65100
families = ["ipv6"]

[ipam]
pod-prefixes = ["fd00:200:9::/64"]
[[ipam.pools]]
name = "pods"
kind = "pod"
prefixes = ["fd00:200::/40"]
`

// TestSystemdRestartKeepsBGPRoutes runs aird under the real unit with a
// BIRD ToR: `systemctl restart aird` is a graceful restart (no CEASE, the
// restart marker survives in the preserved RuntimeDirectory) and the
// switch's FIB keeps the node's route throughout; `systemctl stop aird` is
// a stop, and the switch withdraws the route at once (CEASE).
func TestSystemdRestartKeepsBGPRoutes(t *testing.T) {
	testutil.NspawnRequire(t)
	testutil.RequireCommand(t, "bird")
	aird, airctl := testutil.Binaries(t)
	unit := filepath.Join(testutil.ModuleRoot(t), "systemd", "aird.service")
	c := testutil.NspawnBoot(t, func(root string) {
		testutil.NspawnInstallFile(t, root, aird, "/usr/bin/aird", 0o755)
		testutil.NspawnInstallFile(t, root, airctl, "/usr/bin/airctl", 0o755)
		testutil.NspawnInstallUnit(t, root, unit)
		testutil.NspawnWriteFile(t, root, "/etc/aird/aird.toml", []byte(sdBGPConfig), 0o640)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- journalctl -u aird ---\n%s", c.Journal("aird"))
		}
	})

	// The switch: the host end of the container's veth, moved into a
	// namespace of its own (deleted, with the veth, when the test ends).
	tor := testutil.NewNetns(t, "airdsb-")
	testutil.Run(t, "ip", "link", "set", "ve-"+c.Name, "netns", tor)
	testutil.Run(t, "ip", "-n", tor, "addr", "add", "fd00:100::1/64", "dev", "ve-"+c.Name, "nodad")
	testutil.Run(t, "ip", "-n", tor, "link", "set", "ve-"+c.Name, "up")
	c.MustExec("ip", "addr", "add", "fd00:100::9/64", "dev", "host0", "nodad")
	bird := testutil.StartBIRD(t, tor, torBIRDFor("fd00:100::9"))

	const pod = "fd00:200:9::/64"
	if out, err := c.Exec("systemctl", "start", "aird"); err != nil {
		t.Fatalf("systemctl start aird: %v\n%s", err, out)
	}
	waitTor(t, tor, pod, true, 20*time.Second)
	established := func() bool {
		out, _ := c.Exec("airctl", "bgp", "neighbors", "-o", "json")
		var ns []api.BGPNeighbor
		return json.Unmarshal([]byte(out), &ns) == nil && len(ns) == 1 && ns[0].State == "established"
	}

	t.Run("restart keeps the route", func(t *testing.T) {
		pid := sdShow(t, c, "aird", "MainPID")["MainPID"]
		var missing atomic.Bool
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				if !torHas(t, tor, pod) {
					missing.Store(true)
				}
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		if out, err := c.Exec("systemctl", "restart", "aird"); err != nil {
			t.Fatalf("systemctl restart aird: %v\n%s", err, out)
		}
		if now := sdShow(t, c, "aird", "MainPID")["MainPID"]; now == pid {
			t.Fatalf("MainPID %s unchanged: aird was not restarted", now)
		}
		if !testutil.WaitFor(20*time.Second, established) {
			t.Fatal("the session did not come back within 20s of the restart")
		}
		time.Sleep(time.Second) // and the route stays after End-of-RIB
		close(stop)
		<-done
		if missing.Load() {
			t.Fatalf("%s left the switch's FIB during systemctl restart", pod)
		}
		j := c.Journal("aird")
		if !strings.Contains(j, "intent=restart") {
			t.Errorf("the journal does not show intent=restart")
		}
		t.Logf("BIRD after the restart:\n%s", bird.MustCmd(t, "show", "protocols", "all", "node1"))
	})

	t.Run("stop withdraws at once", func(t *testing.T) {
		start := time.Now()
		if out, err := c.Exec("systemctl", "stop", "aird"); err != nil {
			t.Fatalf("systemctl stop aird: %v\n%s", err, out)
		}
		took := waitTor(t, tor, pod, false, 5*time.Second)
		t.Logf("route withdrawn %s after systemctl stop returned (%s from the stop)", took, time.Since(start).Round(time.Millisecond))
		if j := c.Journal("aird"); !strings.Contains(j, "intent=stop") {
			t.Errorf("the journal does not show intent=stop")
		}
	})
}
