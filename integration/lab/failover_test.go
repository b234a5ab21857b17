package lab

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// lbStat returns one lb event counter of an LB node.
func lbStat(t *testing.T, n *Node, name string) uint64 {
	t.Helper()
	st, err := n.LBStats()
	if err != nil {
		t.Fatal(err)
	}
	return st.Events[name]
}

// TestRackFailover, on one rack:
//
//   - Maglev consistency across LB nodes: connections held through lb1 and
//     lb2 survive when the ToRs take lb1's sessions down (its flows move to
//     lb2, which has no conntrack entry for them and picks the same backend),
//     and again when lb1 comes back;
//   - an endpoint dies: both LB nodes take it out within fall x interval,
//     new flows avoid it, connections to the others are untouched;
//   - every endpoint dies: both VIPs leave both ToRs; they return with the
//     endpoints;
//   - a ToR is lost (all its links down): traffic goes on through the other
//     ToR within a second (BFD: tor2 set to 300 ms x 3 for this test), and
//     the sessions return with the links.
func TestRackFailover(t *testing.T) {
	l := upLab(t)
	ctx := context.Background()
	lb1, lb2 := l.LBs[0], l.LBs[1]

	t.Run("maglev consistency across LB nodes", func(t *testing.T) {
		held, err := l.Hold(VIP6, 64, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		missBefore := lbStat(t, lb2, "ct_miss")
		time.Sleep(500 * time.Millisecond)
		if err := l.SessionsDown(lb1); err != nil {
			t.Fatal(err)
		}
		waitRoutes(t, l, []string{lb2.Name}, 10*time.Second)
		time.Sleep(time.Second) // round trips through lb2 only
		moved := lbStat(t, lb2, "ct_miss") - missBefore
		if err := l.SessionsUp(lb1); err != nil {
			t.Fatal(err)
		}
		waitRoutes(t, l, []string{lb1.Name, lb2.Name}, 30*time.Second)
		time.Sleep(time.Second) // and back through both
		r := held.Stop()
		t.Logf("%v; lb2 took %d flows it had no conntrack entry for", r, moved)
		if r.Broken != 0 {
			t.Errorf("connections broke when the ToRs moved them between LB nodes:\n%v", r)
		}
		if moved == 0 {
			t.Errorf("no flow moved to lb2 (its ct_miss did not grow): the test did not test anything")
		}
		if len(r.PerBackend) < 2 {
			t.Errorf("held connections all on %v", r.PerBackend)
		}
	})

	t.Run("an endpoint dies", func(t *testing.T) {
		dead := l.Servers[len(l.Servers)-1]
		held, err := l.Hold(VIP6, 32, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		dead.StopServer()
		for _, n := range l.LBs {
			var since time.Time
			if !waitFor(10*time.Second, func() bool {
				ss, err := n.Services()
				if err != nil {
					return false
				}
				for _, s := range ss {
					for _, b := range s.Backends {
						if b.Address == dead.Addr6 && s.Protocol == "tcp" {
							if b.Health.Healthy {
								return false
							}
							if b.Health.Since.After(since) {
								since = b.Health.Since
							}
						}
					}
				}
				return true
			}) {
				t.Fatalf("%s still calls %s healthy 10s after its server died", n.Name, dead.Name)
			}
			took := since.Sub(killed)
			t.Logf("%s took %s out %s after its server died (fall 3 x interval 300ms = 900ms)", n.Name, dead.Name, took.Round(time.Millisecond))
			// Probes run at a fixed rate: the first one due after the
			// death fails (refused) within an interval, the third
			// failure, two intervals later, takes it out - within fall
			// x interval, plus the third probe's own time (at most its
			// timeout, 250ms), which also covers a probe that began just
			// before the server was gone.
			if limit := 3*300*time.Millisecond + 250*time.Millisecond; took > limit {
				t.Errorf("%s took %s out after %s: more than fall x interval (900ms) + timeout (250ms)", n.Name, dead.Name, took)
			}
		}
		r, err := l.Traffic(ctx, Load{Kind: HTTP, VIP: VIP6, Requests: 300})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
		if r.Failed != 0 || r.PerBackend[dead.Name] != 0 || len(r.PerBackend) != len(l.Servers)-1 {
			t.Errorf("after %s died: %v", dead.Name, r)
		}
		hr := held.Stop()
		t.Log(hr)
		if hr.Broken != hr.PerBackend[dead.Name] {
			t.Errorf("connections to the other endpoints broke when %s died:\n%v", dead.Name, hr)
		}
		if err := dead.StartServer(); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, l, 20*time.Second)
	})

	t.Run("every endpoint dies", func(t *testing.T) {
		for _, e := range l.Servers {
			e.StopServer()
		}
		for _, tor := range []string{l.Tor1.NS, l.Tor2.NS} {
			for _, vip := range []string{VIP6, VIP4} {
				if !waitFor(10*time.Second, func() bool { return len(l.RouteNodes(tor, vip)) == 0 }) {
					t.Errorf("%s still routes %s via %v 10s after every endpoint died", tor, vip, l.RouteNodes(tor, vip))
				}
			}
		}
		for _, e := range l.Servers {
			if err := e.StartServer(); err != nil {
				t.Fatal(err)
			}
		}
		waitRoutes(t, l, []string{lb1.Name, lb2.Name}, 30*time.Second)
		waitHealthy(t, l, 20*time.Second)
	})

	t.Run("a ToR is lost", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan Result, 1)
		go func() {
			r, err := l.Traffic(ctx, Load{Kind: HTTP, VIP: VIP6, Duration: 30 * time.Second, Workers: 8,
				Timeout: 500 * time.Millisecond, Pause: 10 * time.Millisecond})
			if err != nil {
				t.Error(err)
			}
			done <- r
		}()
		time.Sleep(2 * time.Second)
		// The nodes detect tor2 lost in tor2's multiplier x 300 ms: fast
		// BFD (900 ms) from just before the loss (a stall of a node under
		// load can outlast it too), the lab's 3 s again after the test.
		if err := l.SetTor2BFDMultiplier(bfdFastMultiplier); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := l.SetTor2BFDMultiplier(bfdMultiplier); err != nil {
				t.Error(err)
			}
		}()
		lost := time.Now()
		if err := SetLinks(l.Tor2.NS, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second)
		cancel()
		r := <-done
		t.Logf("tor2 lost at %s: %v (gap ended %s)", lost.Format("15:04:05.000"), r, r.GapEnd.Format("15:04:05.000"))
		if r.MaxGap > time.Second {
			t.Errorf("no request completed for %s around the loss of tor2", r.MaxGap)
		}
		for _, n := range l.AllNodes() {
			if !waitFor(5*time.Second, func() bool {
				ns, err := n.Neighbors()
				return err == nil && ns[1].State != "established"
			}) {
				t.Errorf("%s still has its session with tor2 5s after tor2 was lost", n.Name)
			}
		}
		if err := SetLinks(l.Tor2.NS, true); err != nil {
			t.Fatal(err)
		}
		if err := l.waitServing(); err != nil {
			t.Fatalf("after tor2 came back: %v", err)
		}
	})
}

// waitRoutes waits until both ToRs route both VIPs via exactly nodes.
func waitRoutes(t *testing.T, l *Lab, nodes []string, within time.Duration) {
	t.Helper()
	var last string
	if !waitFor(within, func() bool {
		for _, tor := range []string{l.Tor1.NS, l.Tor2.NS} {
			for _, vip := range []string{VIP6, VIP4} {
				if got := l.RouteNodes(tor, vip); fmt.Sprint(got) != fmt.Sprint(nodes) {
					last = fmt.Sprintf("%s routes %s via %v", tor, vip, got)
					return false
				}
			}
		}
		return true
	}) {
		t.Fatalf("ToRs not routing the VIPs via %v within %s: %s", nodes, within, last)
	}
}

// waitHealthy waits until both LB nodes call every backend healthy.
func waitHealthy(t *testing.T, l *Lab, within time.Duration) {
	t.Helper()
	var bad []string
	if !waitFor(within, func() bool {
		bad = nil
		for _, n := range l.LBs {
			bad = append(bad, n.Unhealthy()...)
		}
		return len(bad) == 0
	}) {
		t.Fatalf("backends still unhealthy after %s: %v", within, bad)
	}
}
