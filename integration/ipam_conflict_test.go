package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// conflictBIRD is a ToR that announces the node's own pod prefix
// fd00:200:1::/64 (as another speaker claiming it would) until its static
// protocol is disabled.
const conflictBIRD = `
router id 10.255.0.254;
protocol device { scan time 1; }
protocol static conflict6 { ipv6; route fd00:200:1::/64 blackhole; }
protocol bgp node1 {
  local as 65100; neighbor fd00:100:1::1 as 65001;
  hold time 9; keepalive time 3;
  connect retry time 1; error wait time 1, 5;
  ipv6 { import all; export where proto = "conflict6"; };
}
`

// TestPodPrefixConflictNotAdvertised: a pod prefix that a BGP peer also
// announces is reported (airctl status, metric) and withdrawn from the
// peer; when the peer stops announcing it, the node advertises it again.
func TestPodPrefixConflictNotAdvertised(t *testing.T) {
	n := newNode(t)
	cfg := strings.Replace(n.bgpConfig(), "families = [\"ipv6\"]\n",
		"families = [\"ipv6\"]\n[bgp.peers.import]\nprefixes = [\"fd00:200::/40 le 64\"]\n", 1)
	n.writeConfig(cfg)
	bird := testutil.StartBIRD(t, n.peerNS, conflictBIRD)
	n.start()

	fromNode := func() bool {
		return strings.Contains(bird.MustCmd(t, "show", "route", "protocol", "node1"), "fd00:200:1::/64")
	}
	if !testutil.WaitFor(30*time.Second, func() bool {
		cs := n.status().PodPrefixConflicts
		return len(cs) == 1 && cs[0].PodPrefix.String() == "fd00:200:1::/64" && cs[0].Peer == "tor"
	}) {
		t.Fatalf("no pod prefix conflict reported within 30s: %+v", n.status().PodPrefixConflicts)
	}
	if !testutil.WaitFor(10*time.Second, func() bool { return !fromNode() }) {
		t.Fatalf("the ToR still has fd00:200:1::/64 from the node during the conflict:\n%s", bird.MustCmd(t, "show", "route", "all"))
	}
	if out, _, _ := n.airctl("status"); !strings.Contains(out, "POD PREFIX CONFLICT: fd00:200:1::/64") {
		t.Fatalf("airctl status does not show the conflict:\n%s", out)
	}
	if m := n.metrics(); !strings.Contains(m, `aird_ipam_pod_prefix_conflict{peer="tor",pod_prefix="fd00:200:1::/64",route="fd00:200:1::/64"} 1`) {
		t.Fatalf("conflict metric missing:\n%s", grepLines(m, "aird_ipam"))
	}

	bird.MustCmd(t, "disable", "conflict6")
	if !testutil.WaitFor(30*time.Second, func() bool { return len(n.status().PodPrefixConflicts) == 0 && fromNode() }) {
		t.Fatalf("after the ToR withdrew its route: conflicts %+v; ToR routes from the node:\n%s",
			n.status().PodPrefixConflicts, bird.MustCmd(t, "show", "route", "protocol", "node1"))
	}
}
