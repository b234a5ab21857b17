package bgp

import (
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// The speaker advertises a pod /64, a VIP /128 and an IPv4 /32 over an
// IPv6 eBGP session; BIRD holds them with the node's underlay next hop
// (the IPv4 one as an RFC 8950 IPv6 next hop) and the communities, and so
// does its kernel.
//
// GoBGP's own v4 CLI (go tool gobgp, a tool of this module) reads the
// speaker's gRPC socket.
func TestBIRDAdvertiseOverIPv6(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001}))
		buildGoBGPCLI(t)
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		sock := filepath.Join(l.StateDir, "gobgp.sock")
		sp := startSpeaker(t, l, nodeTOML(l)+`
[bgp]
asn = 65001
connect-retry = "1s"
grpc-socket = "`+sock+`"
communities = ["65001:100"]
large-communities = ["4200000000:1:1"]
[[bgp.peers]]
name = "tor1"
address = "`+tor.Addr+`"
asn = 65101
communities = ["65001:200"]
`, []Route{
			{Prefix: netip.MustParsePrefix("fd00:200:1::/64"), Communities: []string{"65001:300"}},
			{Prefix: netip.MustParsePrefix("fd00:300::10/128"), LargeCommunities: []string{"4200000000:2:2"}},
			{Prefix: netip.MustParsePrefix("10.200.0.1/32")},
		})
		waitEstablished(t, sp, tor.Addr, 20*time.Second)

		var pod string
		took := eventually(t, 10*time.Second, "BIRD has the pod prefix", func() (bool, string) {
			pod = birdRoute(t, tor, "fd00:200:1::/64")
			return pod != "", "absent"
		})
		t.Logf("pod prefix in BIRD %s after Established", took.Round(time.Millisecond))
		for _, want := range []string{
			"BGP.next_hop: " + tor.NodeAddr, "BGP.as_path: 65001",
			"(65001,100)", "(65001,200)", "(65001,300)", "(4200000000, 1, 1)",
		} {
			if !strings.Contains(pod, want) {
				t.Errorf("BIRD's route for the pod prefix lacks %q:\n%s", want, pod)
			}
		}
		vip := birdRoute(t, tor, "fd00:300::10/128")
		for _, want := range []string{"BGP.next_hop: " + tor.NodeAddr, "(4200000000, 2, 2)", "(65001,100)"} {
			if !strings.Contains(vip, want) {
				t.Errorf("BIRD's route for the VIP lacks %q:\n%s", want, vip)
			}
		}
		if strings.Contains(vip, "(65001,300)") {
			t.Errorf("the pod prefix's community leaked to the VIP:\n%s", vip)
		}
		eventually(t, 10*time.Second, "BIRD has the IPv4 /32 with an IPv6 next hop", func() (bool, string) {
			v4 := birdRoute(t, tor, "10.200.0.1/32")
			return strings.Contains(v4, "BGP.next_hop: "+tor.NodeAddr), v4
		})
		// Remembered for the next start (a graceful restart sends its
		// first UPDATEs before it sees the peer's OPEN).
		if got := loadExtNH(l.StateDir, testLogger()); !got[netip.MustParseAddr(tor.Addr)] || len(got) != 1 {
			t.Errorf("remembered extended next hop peers: %v", got)
		}

		// The switch's kernel.
		eventually(t, 10*time.Second, "the switch's FIB has the routes", func() (bool, string) {
			r6 := ip(t, "-n", tor.NS, "-6", "route", "show", "fd00:200:1::/64")
			r128 := ip(t, "-n", tor.NS, "-6", "route", "show", "fd00:300::10/128")
			r4 := ip(t, "-n", tor.NS, "-4", "route", "show", "10.200.0.1/32")
			ok := strings.Contains(r6, "via "+tor.NodeAddr) && strings.Contains(r128, "via "+tor.NodeAddr) &&
				strings.Contains(r4, "via inet6 "+tor.NodeAddr)
			return ok, r6 + r128 + r4
		})

		n := neighbor(sp, tor.Addr)
		if n.Advertised != 3 || n.Name != "tor1" || n.PeerASN != 65101 {
			t.Errorf("neighbor = %+v, want tor1, AS 65101, 3 advertised", n)
		}
		adv, err := sp.Routes(RouteQuery{Advertised: true})
		if err != nil || len(adv) != 3 {
			t.Errorf("Routes(advertised) = %v, %v; want 3", adv, err)
		}
		// The view without a peer: the underlay next hop (the IPv6 one
		// for the IPv4 route, as peers with extended next hop get it) and
		// the [bgp] communities with the route's own.
		for _, e := range adv {
			comms := strings.Join(e.Communities, " ")
			if e.NextHop.String() != tor.NodeAddr || !strings.Contains(comms, "65001:100") ||
				!slices.Contains(e.LargeCommunities, "4200000000:1:1") {
				t.Errorf("advertised view of %s: next hop %s, communities %v %v", e.Prefix, e.NextHop, e.Communities, e.LargeCommunities)
			}
			if e.Prefix.String() == "fd00:200:1::/64" && comms != "65001:100 65001:300" {
				t.Errorf("pod prefix communities %q, want 65001:100 65001:300", comms)
			}
		}
		reg := checkMetrics(t, sp, `
# HELP aird_bgp_peer_state BGP session state of the peer: 1 for the current state, 0 for the others.
# TYPE aird_bgp_peer_state gauge
aird_bgp_peer_state{peer="tor1",state="active"} 0
aird_bgp_peer_state{peer="tor1",state="connect"} 0
aird_bgp_peer_state{peer="tor1",state="established"} 1
aird_bgp_peer_state{peer="tor1",state="idle"} 0
aird_bgp_peer_state{peer="tor1",state="openconfirm"} 0
aird_bgp_peer_state{peer="tor1",state="opensent"} 0
# HELP aird_bgp_peer_routes_advertised Routes advertised to the peer.
# TYPE aird_bgp_peer_routes_advertised gauge
aird_bgp_peer_routes_advertised{family="ipv4",peer="tor1"} 1
aird_bgp_peer_routes_advertised{family="ipv6",peer="tor1"} 2
# HELP aird_bgp_peer_routes_received Routes the peer sent (Adj-RIB-In).
# TYPE aird_bgp_peer_routes_received gauge
aird_bgp_peer_routes_received{family="ipv4",peer="tor1"} 0
aird_bgp_peer_routes_received{family="ipv6",peer="tor1"} 0
# HELP aird_bgp_peer_routes_accepted Routes from the peer that the import policy accepted.
# TYPE aird_bgp_peer_routes_accepted gauge
aird_bgp_peer_routes_accepted{family="ipv4",peer="tor1"} 0
aird_bgp_peer_routes_accepted{family="ipv6",peer="tor1"} 0
# HELP aird_bgp_peer_flaps_total BGP sessions that went down after being established.
# TYPE aird_bgp_peer_flaps_total counter
aird_bgp_peer_flaps_total{peer="tor1"} 0
# HELP aird_bgp_fib_routes Routes learned over BGP installed in the kernel FIB.
# TYPE aird_bgp_fib_routes gauge
aird_bgp_fib_routes{family="ipv4"} 0
aird_bgp_fib_routes{family="ipv6"} 0
# HELP aird_bgp_fib_reconcile_errors_total FIB reconcile passes that failed.
# TYPE aird_bgp_fib_reconcile_errors_total counter
aird_bgp_fib_reconcile_errors_total 0
# HELP aird_bgp_drained Whether the node is drained (graceful shutdown announced or routes withdrawn).
# TYPE aird_bgp_drained gauge
aird_bgp_drained 0
`, "aird_bgp_peer_state", "aird_bgp_peer_routes_advertised", "aird_bgp_peer_routes_received",
			"aird_bgp_peer_routes_accepted", "aird_bgp_peer_flaps_total", "aird_bgp_fib_routes",
			"aird_bgp_fib_reconcile_errors_total", "aird_bgp_drained")
		if up, ok := metricValue(t, reg, "aird_bgp_peer_uptime_seconds", "peer", "tor1"); !ok || up <= 0 {
			t.Errorf("uptime metric %v (present %t), want > 0", up, ok)
		}
		if _, ok := metricValue(t, reg, "aird_bgp_peer_bfd_up", "peer", "tor1"); ok {
			t.Errorf("BFD metric for a peer without BFD")
		}

		// Deny by default: BIRD exports nothing here, and nothing is
		// installed.
		if out := fibRoutesOf(t, l, "-6"); strings.TrimSpace(out) != "" {
			t.Errorf("FIB has routes: %s", out)
		}

		st, err := os.Lstat(sock)
		if err != nil || st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
			t.Errorf("grpc socket %s: %v, %v; want a socket, mode 0600", sock, st, err)
		}
		cli := os.Getenv(gobgpCLIEnv)
		out, err := exec.Command(cli, "--target", "unix://"+sock, "neighbor").CombinedOutput()
		if err != nil || !strings.Contains(string(out), tor.Addr) || !strings.Contains(string(out), "Establ") {
			t.Errorf("gobgp neighbor: %v\n%s", err, out)
		}
		out, err = exec.Command(cli, "--target", "unix://"+sock, "global", "rib", "-a", "ipv6").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "fd00:200:1::/64") {
			t.Errorf("gobgp global rib: %v\n%s", err, out)
		}
		if err := sp.Stop(StopShutdown); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(sock); err == nil {
			t.Errorf("grpc socket %s left after Stop", sock)
		}
	})
}

// gobgpCLIEnv names the GoBGP v4 CLI binary for the inner run.
const gobgpCLIEnv = "AIRD_TEST_GOBGP_CLI"

// buildGoBGPCLI builds GoBGP's v4 CLI (a tool of this module, go tool
// gobgp) for the inner run: Debian's gobgp package is v3, which cannot
// talk to GoBGP v4's gRPC API.
func buildGoBGPCLI(t *testing.T) {
	testutil.RequireCommand(t, "go")
	bin := filepath.Join(testutil.TempDir(t, "aird-gobgp-cli-"), "gobgp")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/osrg/gobgp/v4/cmd/gobgp").CombinedOutput()
	if err != nil {
		t.Fatalf("go build gobgp: %v\n%s", err, out)
	}
	t.Setenv(gobgpCLIEnv, bin)
}
