package bgp

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// frrBFDConf is an FRR switch with BFD (profile "fast": 300 ms x 3) on its
// session with the node.
func frrBFDConf(tor torSpec) string {
	n := tor.NodeAddr
	return fmt.Sprintf(`frr defaults datacenter
hostname %s
route-map ALLOW permit 10
router bgp %d
 bgp router-id 10.255.0.%d
 no bgp default ipv4-unicast
 timers bgp 3 9
 neighbor %s remote-as %d
 neighbor %s timers connect 1
 neighbor %s bfd
 neighbor %s bfd profile fast
 address-family ipv6 unicast
  neighbor %s activate
  neighbor %s route-map ALLOW in
  neighbor %s route-map ALLOW out
 exit-address-family
`, tor.Name, frrAS, tor.Index, n, frrNodeAS, n, n, n, n, n, n)
}

const frrBFDProfile = `bfd
 profile fast
  detect-multiplier 3
  receive-interval 300
  transmit-interval 300
 !
!
`

// frrBFDStatus returns FRR's BFD session state with the node ("up", ...).
func frrBFDStatus(t *testing.T, tor torSpec) string {
	out := tor.frr().MustVtysh(t, "show bfd peers json")
	var peers []struct {
		Peer   string `json:"peer"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &peers); err != nil {
		return "unparsable: " + out
	}
	for _, p := range peers {
		if p.Peer == tor.NodeAddr {
			return p.Status
		}
	}
	return "absent: " + out
}

// cutLink drops every packet in and out of the switch's namespace with
// nftables inside it (the node's namespace and the root are untouched).
func cutLink(t *testing.T, tor torSpec) {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "cut.nft")
	if err := os.WriteFile(rules, []byte(`table inet aird_test_cut {
	chain in { type filter hook input priority -300; policy drop; }
	chain out { type filter hook output priority -300; policy drop; }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "exec", tor.NS, "nft", "-f", rules).CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s", tor.NS, err, out)
	}
}

// BFD with FRR (bfdd, 300 ms x 3 on both sides): the BFD session comes up
// with the BGP session; when the switch stops answering (nftables drops
// everything inside its namespace) the speaker's BGP session goes down
// within the BFD detection time, far below the 9 s hold time.
func TestFRRBFD(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		f := l.addFRR(t, "tor1", frrBFDConf)
		f.StartBFDd(t, l.spec.Tors[0].NS, frrBFDProfile)
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		sp := startSpeaker(t, l, nodeTOML(l)+fmt.Sprintf(`
[bgp]
asn = %d
connect-retry = "1s"
[[bgp.peers]]
name = "tor1"
address = %q
asn = %d
families = ["ipv6"]
[bgp.peers.bfd]
enabled = true
min-rx = "300ms"
min-tx = "300ms"
multiplier = 3
`, frrNodeAS, tor.Addr, frrAS), nil)
		waitEstablished(t, sp, tor.Addr, 30*time.Second)
		took := eventually(t, 15*time.Second, "BFD up on both sides", func() (bool, string) {
			n, frr := neighbor(sp, tor.Addr).BFD, frrBFDStatus(t, tor)
			return n == "up" && frr == "up", fmt.Sprintf("speaker %q, FRR %q", n, frr)
		})
		t.Logf("BFD up %s after the session", took.Round(time.Millisecond))
		if n := neighbor(sp, tor.Addr); n.State != "established" {
			t.Fatalf("session not established before the cut: %+v", n)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(sp.Collector())
		if v, ok := metricValue(t, reg, "aird_bgp_peer_bfd_up", "peer", "tor1"); !ok || v != 1 {
			t.Errorf("aird_bgp_peer_bfd_up = %v (present %t), want 1", v, ok)
		}

		cutLink(t, tor)
		cut := time.Now()
		var rt peerRuntime
		deadline := cut.Add(5 * time.Second)
		for {
			rt, _ = sp.run.tracker.byKey(tor.Addr)
			if !rt.up || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if rt.up {
			t.Fatalf("BGP session still up %s after the cut", time.Since(cut).Round(time.Millisecond))
		}
		detect := rt.changed.Sub(cut)
		n := neighbor(sp, tor.Addr)
		t.Logf("BGP session down %s after the link was cut (BFD 300ms x 3 = 900ms; hold time 9s): state %s, BFD %s, %s",
			detect.Round(time.Millisecond), n.State, n.BFD, n.LastError)
		if detect > 2*time.Second {
			t.Errorf("session went down %s after the cut: not BFD (detection time 900ms)", detect)
		}
		if n.BFD == "up" {
			t.Errorf("BGP down but BFD up: %+v", n)
		}
		if v, _ := metricValue(t, reg, "aird_bgp_peer_flaps_total", "peer", "tor1"); v != 1 {
			t.Errorf("aird_bgp_peer_flaps_total = %v, want 1", v)
		}
		if v, _ := metricValue(t, reg, "aird_bgp_peer_state", "peer", "tor1", "state", "established"); v != 0 {
			t.Errorf("still established in the metrics")
		}

		// The switch answers again: the session comes back after the
		// connect-retry interval (1 s here), not after GoBGP's default
		// 30 s idle hold that follows a reset of its own.
		healLink(t, tor)
		back := eventually(t, 25*time.Second, "the session re-established after the link healed", func() (bool, string) {
			n := neighbor(sp, tor.Addr)
			return n.State == "established", fmt.Sprintf("state %s, BFD %s, %s", n.State, n.BFD, n.LastError)
		})
		t.Logf("session re-established %s after the link healed (%s after the cut)", back.Round(time.Millisecond), time.Since(cut).Round(time.Millisecond))
	})
}

// healLink undoes cutLink.
func healLink(t *testing.T, tor torSpec) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", tor.NS, "nft", "delete", "table", "inet", "aird_test_cut").CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s", tor.NS, err, out)
	}
}
