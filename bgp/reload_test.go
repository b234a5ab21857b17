package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func reloadTOML(l labSpec, asn int, tor1Comms string, withTor2 bool) string {
	s := nodeTOML(l) + fmt.Sprintf(`
[bgp]
asn = %d
connect-retry = "1s"
[[bgp.peers]]
name = "tor1"
address = %q
asn = 65101
communities = [%s]
`, asn, l.Tors[0].Addr, tor1Comms)
	if withTor2 {
		s += fmt.Sprintf(`
[[bgp.peers]]
name = "tor2"
address = %q
asn = 65102
`, l.Tors[1].Addr)
	}
	return s
}

// Apply adds a peer without resetting the other session, changes a peer's
// export policy with a soft reset only, and refuses an AS change.
func TestApplyKeepsOtherSessions(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {
		l.addBIRD(t, "tor1", birdConf(birdOpts{nodeAS: 65001}))
		// The node's next hop is its underlay address, on the tor1
		// link: tor2 reaches it through the node (as a switch would
		// reach a node's loopback through its IGP).
		l.addBIRD(t, "tor2", birdConf(birdOpts{nodeAS: 65001, recursiveVia: "fd00:100:1::2/128"}))
	}, func(t *testing.T, l labSpec) {
		tor1, tor2 := l.Tors[0], l.Tors[1]
		pod := "fd00:200:1::/64"
		sp := startSpeaker(t, l, reloadTOML(l, 65001, "", false), []Route{{Prefix: netip.MustParsePrefix(pod)}})
		n1 := waitEstablished(t, sp, tor1.Addr, 20*time.Second)
		eventually(t, 10*time.Second, "BIRD tor1 has the pod prefix", func() (bool, string) {
			return birdRoute(t, tor1, pod) != "", "absent"
		})
		st, since := birdSession(t, tor1, "node1")
		if st != "Established" {
			t.Fatalf("BIRD tor1: %s", st)
		}
		c := parseConfig(t, reloadTOML(l, 65001, `"65001:777"`, true))
		if err := sp.Apply(c.BGP, c.Node); err != nil {
			t.Fatal(err)
		}
		waitEstablished(t, sp, tor2.Addr, 20*time.Second)
		took := eventually(t, 10*time.Second, "tor1 gets the new community by a soft reset", func() (bool, string) {
			r := birdRoute(t, tor1, pod)
			return strings.Contains(r, "(65001,777)"), r
		})
		t.Logf("new export policy reached tor1 in %s", took.Round(time.Millisecond))
		eventually(t, 10*time.Second, "tor2 has the pod prefix", func() (bool, string) {
			return birdRoute(t, tor2, pod) != "", "absent"
		})
		if st2, since2 := birdSession(t, tor1, "node1"); st2 != "Established" || !sameInstant(since2, since) {
			t.Errorf("BIRD tor1: %s since %s, want Established since %s (no reset)", st2, since2, since)
		}
		if n := neighbor(sp, tor1.Addr); n.State != "established" || !n.Since.Equal(n1.Since) {
			t.Errorf("tor1: %s since %s, want established since %s", n.State, n.Since, n1.Since)
		}

		// Removing tor2 leaves tor1 alone too.
		c = parseConfig(t, reloadTOML(l, 65001, `"65001:777"`, false))
		if err := sp.Apply(c.BGP, c.Node); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "tor2 loses the session", func() (bool, string) {
			st, _ := birdSession(t, tor2, "node1")
			return st != "Established", st
		})
		if st2, since2 := birdSession(t, tor1, "node1"); st2 != "Established" || !sameInstant(since2, since) {
			t.Errorf("after removing tor2, BIRD tor1: %s since %s, want Established since %s", st2, since2, since)
		}
		if len(sp.Neighbors()) != 1 {
			t.Errorf("neighbors: %+v", sp.Neighbors())
		}

		c = parseConfig(t, reloadTOML(l, 65002, `"65001:777"`, false))
		if err := sp.Apply(c.BGP, c.Node); !errors.Is(err, ErrRestartNeeded) {
			t.Errorf("Apply with another AS: %v, want ErrRestartNeeded", err)
		}
	})
}
