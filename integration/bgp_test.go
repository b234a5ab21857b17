package integration

import (
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// torBIRD is a BIRD ToR in the node's peer namespace: eBGP to the node over
// the uplink, graceful restart on, routes exported to its kernel FIB.
var torBIRD = torBIRDFor("fd00:100:1::1")

// torBIRDFor is that ToR for a node at address node.
func torBIRDFor(node string) string {
	return `
router id 10.255.0.254;
protocol device { scan time 1; }
protocol kernel kernel6 { ipv6 { import none; export all; }; merge paths on; }
protocol bgp node1 {
  local as 65100; neighbor ` + node + ` as 65001;
  hold time 9; keepalive time 3;
  connect retry time 1; error wait time 1, 5;
  graceful restart on; graceful restart time 120;
  ipv6 { import all; export none; };
}
`
}

// bgpConfig is a node that peers with the BIRD ToR and serves one VIP from
// two backends in the peer namespace, health-checked every 200ms. The
// backends are plain listeners that do not decapsulate, so the checks go
// to their addresses directly instead of through the tunnel.
func (n *node) bgpConfig() string {
	return n.config("info", "uplink0") + `
[bgp]
asn = 65001
connect-retry = "1s"
[bgp.drain]
wait = "2s"
prepend = 1
[[bgp.peers]]
name = "tor"
address = "fd00:100:1::2"
asn = 65100
families = ["ipv6"]

[ipam]
pod-prefixes = ["fd00:200:1::/64"]
[[ipam.pools]]
name = "pods"
kind = "pod"
prefixes = ["fd00:200::/40"]
[[ipam.pools]]
name = "services"
kind = "service"
prefixes = ["fd00:300::/112"]

[[services]]
name = "web"
vip = "fd00:300::10"
port = 80
communities = ["65001:80"]
backends = [{ address = "fd00:100:1::21" }, { address = "fd00:100:1::22" }]
[services.health-check]
type = "tcp"
port = 8080
interval = "200ms"
timeout = "150ms"
rise = 1
fall = 2
via = "direct"
`
}

// backend accepts and at once closes connections on addr:8080 inside ns
// until stopped: enough for a TCP health check.
func backend(t *testing.T, ns, addr string) (stop func()) {
	t.Helper()
	return serveTCP(t, ns, "["+addr+"]:8080", func(net.Conn) {})
}

func torHas(t *testing.T, ns, prefix string) bool {
	out := testutil.Run(t, "ip", "-n", ns, "-6", "route", "show", prefix)
	return strings.Contains(out, prefix)
}

func waitTor(t *testing.T, ns, prefix string, present bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if torHas(t, ns, prefix) == present {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s present=%v in the ToR's FIB not reached within %s:\n%s", prefix, present, within,
		testutil.Run(t, "ip", "-n", ns, "-6", "route"))
	return 0
}

// TestRouteHealthInjection: the VIP is in the switch's FIB while a backend
// is healthy, leaves it when every backend fails, and returns when one
// recovers; the pod prefix stays throughout. airctl shows the session and
// the routes.
func TestRouteHealthInjection(t *testing.T) {
	n := newNode(t)
	testutil.Addr(t, n.peerNS, "eth0", "fd00:100:1::21/128")
	testutil.Addr(t, n.peerNS, "eth0", "fd00:100:1::22/128")
	stop1 := backend(t, n.peerNS, "fd00:100:1::21")
	stop2 := backend(t, n.peerNS, "fd00:100:1::22")
	bird := testutil.StartBIRD(t, n.peerNS, torBIRD)
	n.writeConfig(n.bgpConfig())
	n.start()

	waitTor(t, n.peerNS, "fd00:200:1::/64", true, 20*time.Second)
	waitTor(t, n.peerNS, "fd00:300::10", true, 5*time.Second)
	if all := bird.MustCmd(t, "show", "route", "all", "fd00:300::10/128"); !strings.Contains(all, "(65001,80)") {
		t.Errorf("the VIP lacks its service community 65001:80 in BIRD:\n%s", all)
	}

	out, errs, code := n.airctl("bgp", "neighbors", "-o", "json")
	var ns []api.BGPNeighbor
	if code != 0 || json.Unmarshal([]byte(out), &ns) != nil || len(ns) != 1 || ns[0].State != "established" || ns[0].Advertised < 2 {
		t.Fatalf("airctl bgp neighbors: exit %d %s\n%s", code, errs, out)
	}
	out, _, _ = n.airctl("bgp", "routes", "advertised")
	if !strings.Contains(out, "fd00:300::10/128") || !strings.Contains(out, "fd00:200:1::/64") {
		t.Fatalf("airctl bgp routes advertised:\n%s", out)
	}
	// What the ToR is sent: after its export policy, with the service
	// community and our next hop.
	out, errs, code = n.airctl("bgp", "routes", "advertised", "--neighbor", "tor", "-o", "json")
	var sent []api.BGPRoute
	if code != 0 || json.Unmarshal([]byte(out), &sent) != nil || len(sent) != 2 {
		t.Fatalf("airctl bgp routes advertised --neighbor tor: exit %d %s\n%s", code, errs, out)
	}
	for _, r := range sent {
		if r.NextHop.String() != "fd00:100:1::1" {
			t.Errorf("%s is sent to the ToR with next hop %s, want fd00:100:1::1", r.Prefix, r.NextHop)
		}
		if r.Prefix.String() == "fd00:300::10/128" && !slices.Contains(r.Communities, "65001:80") {
			t.Errorf("the VIP is sent without its community 65001:80: %v", r.Communities)
		}
	}

	stop1()
	time.Sleep(time.Second)
	if !torHas(t, n.peerNS, "fd00:300::10") {
		t.Fatal("the VIP was withdrawn while one backend was still healthy")
	}
	stop2()
	took := waitTor(t, n.peerNS, "fd00:300::10", false, 5*time.Second)
	t.Logf("VIP withdrawn from the switch's FIB %s after the last backend stopped (fall 2 x 200ms)", took)
	if !torHas(t, n.peerNS, "fd00:200:1::/64") {
		t.Fatal("the pod prefix went with the VIP")
	}
	out, _, _ = n.airctl("lb", "services")
	if !strings.Contains(out, "fd00:300::10") || !strings.Contains(out, "no") {
		t.Fatalf("airctl lb services does not show the VIP as not serving:\n%s", out)
	}
	backend(t, n.peerNS, "fd00:100:1::22")
	took = waitTor(t, n.peerNS, "fd00:300::10", true, 5*time.Second)
	t.Logf("VIP back in the switch's FIB %s after a backend recovered", took)

	m := n.metrics()
	for _, want := range []string{`aird_bgp_peer_state{`, `aird_bgp_peer_routes_advertised{family="ipv6",peer="tor"} 2`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Maintenance drain: the switch sees GRACEFUL_SHUTDOWN, then the withdraw.
	if out, errs, code := n.airctl("bgp", "drain"); code != 0 {
		t.Fatalf("airctl bgp drain: exit %d %s%s", code, out, errs)
	}
	if !testutil.WaitFor(3*time.Second, func() bool {
		all, _ := bird.Cmd("show", "route", "all", "fd00:300::10/128")
		return strings.Contains(all, "(65535,0)")
	}) {
		t.Fatalf("BIRD never saw 65535:0 on the VIP:\n%s", bird.MustCmd(t, "show", "route", "all", "fd00:300::10/128"))
	}
	if !n.status().BGPDrained {
		t.Error("airctl status does not say the node is drained")
	}
	took = waitTor(t, n.peerNS, "fd00:200:1::/64", false, 6*time.Second)
	t.Logf("drained routes withdrawn %s after GRACEFUL_SHUTDOWN was seen (wait 2s)", took)
	if out, errs, code := n.airctl("bgp", "undrain"); code != 0 {
		t.Fatalf("airctl bgp undrain: exit %d %s%s", code, out, errs)
	}
	waitTor(t, n.peerNS, "fd00:200:1::/64", true, 5*time.Second)
	waitTor(t, n.peerNS, "fd00:300::10", true, 5*time.Second)
	if all := bird.MustCmd(t, "show", "route", "all", "fd00:300::10/128"); strings.Contains(all, "(65535,0)") {
		t.Errorf("GRACEFUL_SHUTDOWN still on the VIP after undrain:\n%s", all)
	}
}

// TestGracefulRestartKeepsRoutes: SIGKILL and SIGUSR2 (outside systemd the
// explicit restart) followed by a new aird: the switch keeps the node's
// routes the whole time — never a withdraw. Then SIGTERM, which outside
// systemd is a stop: the switch's RIB loses them within a second.
func TestGracefulRestartKeepsRoutes(t *testing.T) {
	n := newNode(t)
	testutil.Addr(t, n.peerNS, "eth0", "fd00:100:1::21/128")
	backend(t, n.peerNS, "fd00:100:1::21")
	bird := testutil.StartBIRD(t, n.peerNS, torBIRD)
	n.writeConfig(n.bgpConfig())
	n.start()
	waitTor(t, n.peerNS, "fd00:200:1::/64", true, 20*time.Second)
	waitTor(t, n.peerNS, "fd00:300::10", true, 5*time.Second)

	prefixes := []string{"fd00:200:1::/64", "fd00:300::10"}
	for _, how := range []string{"SIGKILL", "SIGUSR2"} {
		t.Run(how, func(t *testing.T) {
			// Watch the switch's FIB every 50ms from before the stop until
			// the new aird's session is up again.
			var missing atomic.Value
			stopWatch, watched := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(watched)
				for {
					for _, p := range prefixes {
						if !torHas(t, n.peerNS, p) && missing.Load() == nil {
							missing.Store(p + " left the switch's FIB")
						}
					}
					select {
					case <-stopWatch:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}()
			if how == "SIGKILL" {
				n.kill()
			} else {
				_ = n.cmd.Process.Signal(syscall.SIGUSR2)
				n.notify.waitFor(t, "STOPPING=1", 10*time.Second)
				if err := <-n.exited; err != nil {
					t.Fatalf("aird exited with %v after SIGUSR2", err)
				}
				n.cmd = nil
			}
			time.Sleep(2 * time.Second) // down for a while: the switch holds the routes as stale
			n.start()
			if !testutil.WaitFor(20*time.Second, func() bool {
				out, _, _ := n.airctl("bgp", "neighbors", "-o", "json")
				var ns []api.BGPNeighbor
				return json.Unmarshal([]byte(out), &ns) == nil && len(ns) == 1 && ns[0].State == "established"
			}) {
				t.Fatal("the session did not come back within 20s")
			}
			time.Sleep(time.Second) // and stays after End-of-RIB
			close(stopWatch)
			<-watched
			if m := missing.Load(); m != nil {
				t.Fatalf("during a %s restart: %v", how, m)
			}
		})
	}

	t.Run("SIGTERM", func(t *testing.T) {
		for _, p := range prefixes {
			if !birdHas(t, bird, p) {
				t.Fatalf("%s not in BIRD's RIB before the stop", p)
			}
		}
		start := time.Now()
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		var gone time.Duration
		for time.Since(start) < 10*time.Second {
			if !birdHas(t, bird, prefixes[0]) && !birdHas(t, bird, prefixes[1]) {
				gone = time.Since(start)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := <-n.exited; err != nil {
			t.Fatalf("aird exited with %v after SIGTERM", err)
		}
		n.cmd = nil
		if gone == 0 || gone > time.Second {
			t.Fatalf("BIRD's RIB still had the routes %s after SIGTERM (gone after %s)\n%s", time.Since(start), gone, n.log.String())
		}
		t.Logf("SIGTERM outside systemd: BIRD's RIB lost the routes %s after the signal", gone.Round(time.Millisecond))
		if !strings.Contains(n.log.String(), "intent=stop") {
			t.Errorf("aird did not log intent=stop")
		}
	})
}

// birdHas reports whether BIRD's RIB has a route for prefix.
func birdHas(t *testing.T, b *testutil.BIRD, prefix string) bool {
	out, err := b.Cmd("show", "route", "for", prefix)
	if err != nil && !strings.Contains(out, "Network not found") {
		t.Fatalf("birdc: %v\n%s", err, out)
	}
	return strings.Contains(out, "fd00:100:1::1")
}
