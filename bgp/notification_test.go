package bgp

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

func TestNotificationDecoding(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		code, sub uint8
		sent      bool
		text      string
	}{
		{6, 1, true, "Cease / Maximum Number of Prefixes Reached"},
		{6, 2, false, "Cease / Administrative Shutdown"},
		{6, 4, true, "Cease / Administrative Reset"},
		{3, 8, false, "UPDATE Message Error / Invalid NEXT_HOP Attribute"},
		{4, 0, false, "Hold Timer Expired"},
		{2, 7, false, "OPEN Message Error / Unsupported Capability"},
	} {
		prefix := "notification-received "
		if c.sent {
			prefix = "notification-sent "
		}
		msg := prefix + gobgp.NewNotificationErrorCode(c.code, c.sub).String()
		n, sent := parseDisconnect(msg, now)
		if n == nil || n.Code != c.code || n.Subcode != c.sub || n.Text != c.text || sent != c.sent || !n.At.Equal(now) {
			t.Errorf("%q: %+v sent %t, want %d/%d %q sent %t", msg, n, sent, c.code, c.sub, c.text, c.sent)
		}
	}
	if n, _ := parseDisconnect("graceful-restart", now); n != nil {
		t.Errorf("graceful-restart decoded as %+v", n)
	}
	if got := disconnectText("graceful-restart"); got == "graceful-restart" {
		t.Errorf("a TCP loss reads %q", got)
	}
	if got := notificationText(6, 42); got != "Cease / subcode 42" {
		t.Errorf("unknown subcode: %q", got)
	}

	// The speaker's own Cease/1 explains the loss GoBGP reports after it.
	addr := netip.MustParseAddr("fd00::1")
	tr := newTracker([]peer{{key: "fd00::1", session: session{address: addr}}}, now)
	tr.sent(addr, newNotification(6, 1, now))
	tr.down(addr, "graceful-restart", now.Add(time.Second))
	if rt, _ := tr.snapshot(addr); rt.lastError != "NOTIFICATION sent: Cease / Maximum Number of Prefixes Reached" {
		t.Errorf("last error %q", rt.lastError)
	}
	tr.down(addr, "notification-received "+gobgp.NewNotificationErrorCode(6, 2).String(), now.Add(time.Minute))
	if rt, _ := tr.snapshot(addr); rt.lastReceived == nil || rt.lastReceived.Subcode != 2 || rt.lastSent.Subcode != 1 ||
		rt.lastError != "NOTIFICATION received: Cease / Administrative Shutdown" {
		t.Errorf("after a received Cease/2: %+v", rt)
	}
	tr.down(addr, "graceful-restart", now.Add(2*time.Minute))
	if rt, _ := tr.snapshot(addr); rt.lastError != disconnectText("graceful-restart") {
		t.Errorf("a later TCP loss keeps %q", rt.lastError)
	}
}

func TestMD5Counters(t *testing.T) {
	f := filepath.Join(t.TempDir(), "netstat")
	if err := os.WriteFile(f, []byte("TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure\n"+
		"TcpExt: 0 7 0 3\nIpExt: InNoRoutes\nIpExt: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := md5Counters(f)
	if err != nil || c["TCPMD5NotFound"] != 7 || c["TCPMD5Failure"] != 3 || len(c) != 3 {
		t.Errorf("md5Counters = %v, %v", c, err)
	}
	if _, err := md5Counters("/proc/self/net/netstat"); err != nil {
		t.Errorf("this kernel: %v", err)
	}
}

func TestExtNHFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if got := loadExtNH(dir, testLogger()); len(got) != 0 {
		t.Errorf("nothing saved yet: %v", got)
	}
	want := map[netip.Addr]bool{netip.MustParseAddr("fd00::1"): true, netip.MustParseAddr("fe80::1%eth1"): true}
	if err := saveExtNH(dir, want); err != nil {
		t.Fatal(err)
	}
	if got := loadExtNH(dir, testLogger()); len(got) != 2 || !got[netip.MustParseAddr("fe80::1%eth1")] {
		t.Errorf("loaded %v, want %v", got, want)
	}
}
