package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/api"
)

// airctl bgp neighbors PEER shows the families with their next hops or
// why they are not sent, the decoded NOTIFICATIONs and the hint; an idle
// session shows how long it has been down.
func TestPrintNeighbor(t *testing.T) {
	now := time.Now()
	n := api.BGPNeighbor{
		Name: "tor1", Address: netip.MustParseAddr("fd00::1"), PeerASN: 65101, LocalASN: 65001,
		State: "idle", StateSince: now.Add(-90 * time.Second), Families: []string{"ipv6", "ipv4"},
		FamilyStatus: []api.BGPFamilyStatus{
			{Family: "ipv6", State: "sent", NextHop: netip.MustParseAddr("fd00::2")},
			{Family: "ipv4", State: "not-sendable", Reason: "no IPv4 next hop"},
		},
		LastError:            "NOTIFICATION sent: Cease / Maximum Number of Prefixes Reached",
		LastNotificationSent: &api.BGPNotification{Code: 6, Subcode: 1, Text: "Cease / Maximum Number of Prefixes Reached", At: now},
		Hint:                 "TCP MD5 is configured and no BGP OPEN came through",
	}
	var out bytes.Buffer
	if err := printNeighbor(&cli{stdout: &out}, n); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"state:", "idle for 1m30s", "family ipv6:", "sent, next hop fd00::2", "family ipv4:", "not-sendable: no IPv4 next hop",
		"last NOTIFICATION sent:", "Cease / Maximum Number of Prefixes Reached (code 6, subcode 1)",
		"last NOTIFICATION received:  -", "hint:", "TCP MD5",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if got := familiesCell(n); got != "ipv6 ipv4(not-sendable)" {
		t.Errorf("families cell %q", got)
	}
	n.State, n.UptimeSec = "established", 42
	if got := stateFor(n, now); got != "42s" {
		t.Errorf("established for %q, want the uptime", got)
	}
}
