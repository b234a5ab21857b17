package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// TestReloadAddsAndRemovesTheSpeaker: adding [bgp] on reload starts the
// speaker (the ToR learns the pod prefix), removing it stops the speaker
// so that the ToR drops the routes at once - within 3 s, not after the 9 s
// hold time nor the 120 s a graceful restart would keep them
// (docs/configuration.md, [bgp]).
func TestReloadAddsAndRemovesTheSpeaker(t *testing.T) {
	n := newNode(t)
	bird := testutil.StartBIRD(t, n.peerNS, torBIRD)
	plain := n.config("info", "uplink0") + `
[ipam]
pod-prefixes = ["fd00:200:1::/64"]
[[ipam.pools]]
name = "pods"
kind = "pod"
prefixes = ["fd00:200::/40"]
`
	withBGP := plain + `
[bgp]
asn = 65001
connect-retry = "1s"
[[bgp.peers]]
name = "tor"
address = "fd00:100:1::2"
asn = 65100
families = ["ipv6"]
`
	n.writeConfig(plain)
	n.start()
	time.Sleep(2 * time.Second)
	if torHas(t, n.peerNS, "fd00:200:1::/64") {
		t.Fatal("the ToR has the pod prefix from a node without [bgp]")
	}

	n.writeConfig(withBGP)
	if _, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload adding [bgp]: exit %d: %s", code, errs)
	}
	took := waitTor(t, n.peerNS, "fd00:200:1::/64", true, 20*time.Second)
	t.Logf("pod prefix at the ToR %s after the reload that added [bgp]", took)

	n.writeConfig(plain)
	if _, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload removing [bgp]: exit %d: %s", code, errs)
	}
	took = waitTor(t, n.peerNS, "fd00:200:1::/64", false, 3*time.Second)
	t.Logf("pod prefix gone from the ToR %s after the reload that removed [bgp]", took)
	if out, _, _ := n.airctl("bgp", "neighbors"); strings.Contains(out, "established") {
		t.Fatalf("airctl bgp neighbors after [bgp] was removed:\n%s", out)
	}
	if st := bird.MustCmd(t, "show", "protocols", "node1"); strings.Contains(st, "Established") {
		t.Fatalf("BIRD's session is still established:\n%s", st)
	}
}
