package lab

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

func TestMain(m *testing.M) {
	ServeIfAsked() // the endpoints' servers are this binary
	os.Exit(m.Run())
}

// upLab builds the rack for a test and removes it when the test ends.
func upLab(t *testing.T) *Lab {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.RequireBPFFS(t)
	for _, c := range []string{"ip", "nsenter", "ethtool", "bird", "birdc", "vtysh", "ss"} {
		testutil.RequireCommand(t, c)
	}
	if _, err := os.Stat(testutil.FRRDir + "/bfdd"); err != nil {
		testutil.Unavailable(t, "FRR not installed (apt-get install frr)")
	}
	aird, airctl := testutil.Binaries(t)
	l, err := Up(Options{Aird: aird, Airctl: airctl, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range l.AllNodes() {
				t.Logf("%s's aird log (tail):\n%s", n.Name, n.LogTail(40))
			}
			t.Logf("session and BFD events, every daemon:\n%s", l.SessionEvents(30))
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRackServes: HTTP, TCP and UDP from the client to both VIPs are
// answered by every endpoint (Maglev spreads the flows), none fails, and
// both LB nodes carry a share (the ToRs' ECMP).
func TestRackServes(t *testing.T) {
	l := upLab(t)
	ctx := context.Background()
	for _, load := range []Load{
		{Kind: HTTP, VIP: VIP6, Requests: 400, Workers: 8},
		{Kind: HTTP, VIP: VIP4, Requests: 400, Workers: 8},
		{Kind: TCP, VIP: VIP6, Requests: 200, Workers: 8},
		{Kind: UDP, VIP: VIP4, Requests: 200, Workers: 8},
		{Kind: UDP, VIP: VIP6, Requests: 200, Workers: 8},
	} {
		r, err := l.Traffic(ctx, load)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
		if r.Failed != 0 || r.OK != load.Requests {
			t.Errorf("%s: %d of %d requests failed", r.Target, r.Failed, load.Requests)
		}
		for _, e := range l.Servers {
			// Each of 4 backends is due a quarter; a backend with
			// under a tenth of it means the flows did not spread.
			if n := r.PerBackend[e.Name]; n < load.Requests/40 {
				t.Errorf("%s: backend %s answered %d of %d", r.Target, e.Name, n, load.Requests)
			}
		}
	}
	for _, n := range l.LBs {
		st, err := n.LBStats()
		if err != nil {
			t.Fatal(err)
		}
		var pkts uint64
		for _, s := range st.Services {
			pkts += s.Packets
		}
		t.Logf("%s balanced %d packets", n.Name, pkts)
		if pkts < 100 {
			t.Errorf("%s carried %d packets: the ToRs' ECMP did not spread the flows over both LB nodes", n.Name, pkts)
		}
	}
}
