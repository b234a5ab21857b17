package bgp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	frrAS     = 4200000100
	frrNodeAS = 4200000001
	frrKey    = "s3cret-md5-key"
)

// frrConf renders an FRR switch with a TCP MD5 password for the node.
func frrConf(tor torSpec) string {
	n := tor.NodeAddr
	return fmt.Sprintf(`frr defaults datacenter
hostname %s
route-map ALLOW permit 10
router bgp %d
 bgp router-id 10.255.0.%d
 no bgp default ipv4-unicast
 timers bgp 3 9
 neighbor %s remote-as %d
 neighbor %s password %s
 neighbor %s timers connect 1
 address-family ipv6 unicast
  neighbor %s activate
  neighbor %s route-map ALLOW in
  neighbor %s route-map ALLOW out
 exit-address-family
`, tor.Name, frrAS, tor.Index, n, frrNodeAS, n, frrKey, n, n, n, n)
}

// frrNeighborState returns FRR's bgpState for the node and its remote AS.
func frrNeighborState(t *testing.T, tor torSpec) (string, uint32) {
	t.Helper()
	out, err := tor.frr().Vtysh("show bgp neighbors " + tor.NodeAddr + " json")
	if err != nil {
		t.Fatalf("vtysh: %v\n%s", err, out)
	}
	var m map[string]struct {
		BGPState string `json:"bgpState"`
		RemoteAs uint32 `json:"remoteAs"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("vtysh json: %v\n%s", err, out)
	}
	n := m[tor.NodeAddr]
	return n.BGPState, n.RemoteAs
}

// frrSpeakerTOML configures the node with a 4-byte AS and the password in
// a file, which must be mode 0600.
func frrSpeakerTOML(t *testing.T, l labSpec, key string) string {
	pw := filepath.Join(t.TempDir(), "tor1.key")
	if err := os.WriteFile(pw, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return nodeTOML(l) + fmt.Sprintf(`
[bgp]
asn = %d
connect-retry = "1s"
[[bgp.peers]]
name = "tor1"
address = %q
asn = %d
password-file = %q
families = ["ipv6"]
`, frrNodeAS, l.Tors[0].Addr, frrAS, pw)
}

// FRR peers with the node over IPv6 with 4-byte AS numbers on both sides
// and TCP MD5; the pod prefix reaches FRR's RIB and its kernel.
func TestFRRFourByteASAndMD5(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addFRR(t, "tor1", frrConf)
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		sp := startSpeaker(t, l, frrSpeakerTOML(t, l, frrKey), []Route{{Prefix: netip.MustParsePrefix("fd00:200:1::/64")}})
		n := waitEstablished(t, sp, tor.Addr, 30*time.Second)
		if n.PeerASN != frrAS || n.LocalASN != frrNodeAS {
			t.Errorf("neighbor AS %d, local AS %d; want %d, %d", n.PeerASN, n.LocalASN, frrAS, frrNodeAS)
		}
		eventually(t, 10*time.Second, "FRR sees the session established", func() (bool, string) {
			st, as := frrNeighborState(t, tor)
			return st == "Established" && as == frrNodeAS, fmt.Sprintf("state %q remote AS %d", st, as)
		})
		eventually(t, 10*time.Second, "FRR has the pod prefix from the node", func() (bool, string) {
			out := tor.frr().MustVtysh(t, "show bgp ipv6 unicast fd00:200:1::/64 json")
			return strings.Contains(out, tor.NodeAddr) && strings.Contains(out, fmt.Sprint(frrNodeAS)), out
		})
		eventually(t, 10*time.Second, "FRR's kernel has the pod prefix", func() (bool, string) {
			out := ip(t, "-n", tor.NS, "-6", "route", "show", "fd00:200:1::/64")
			return strings.Contains(out, "via "+tor.NodeAddr) && strings.Contains(out, "proto bgp"), out
		})
	})
}

// With the wrong TCP MD5 key the session never comes up (the kernels
// drop the segments).
func TestFRRMD5Mismatch(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addFRR(t, "tor1", frrConf)
	}, func(t *testing.T, l labSpec) {
		tor := l.Tors[0]
		sp := startSpeaker(t, l, frrSpeakerTOML(t, l, "not-the-key"), nil)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if n := neighbor(sp, tor.Addr); n.State == "established" {
				t.Fatalf("session established with a wrong MD5 key: %+v", n)
			}
			if st, _ := frrNeighborState(t, tor); st == "Established" {
				t.Fatalf("FRR established with a wrong MD5 key")
			}
			time.Sleep(500 * time.Millisecond)
		}
		st, _ := frrNeighborState(t, tor)
		n := neighbor(sp, tor.Addr)
		t.Logf("after 10s: speaker %q, FRR %q; hint: %s", n.State, st, n.Hint)
		if !strings.Contains(n.Hint, "TCP MD5") || !strings.Contains(n.Hint, "TCPMD5Failure") {
			t.Errorf("no MD5 hint for a session stuck before OPEN: %+v", n)
		}
		if d := time.Since(n.StateSince); d < 9*time.Second || d > time.Minute {
			t.Errorf("state since %s (%s ago), want the start, 10 s ago", n.StateSince, d)
		}
	})
}
