package lab

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// underLoad runs disrupt while the client keeps HTTP requests going to
// both VIPs and 32 held connections busy, and both ToRs are watched for
// any moment where they do not route the VIPs via every LB node. It fails
// the test on a failed request, a broken connection, a route withdrawn or
// a packet any node's data plane dropped, and requires at least
// minRequests requests. A request that failed only because the client
// process did not run in time - its kernel had the handshake or the answer
// before the request's deadline (CauseClient) - is reported, not counted
// against aird; every other failure is.
func underLoad(t *testing.T, l *Lab, minRequests int, disrupt func(t *testing.T)) {
	t.Helper()
	// A restart is over for the switches only at its End-of-RIB, which
	// can take aird half a minute (selection deferral); one disruption
	// must not land in the recovery of the one before.
	if err := l.WaitRestartsDone(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	held, err := l.Hold(VIP6, 32, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	watch, err := l.WatchRoutes(l.LBs...)
	if err != nil {
		t.Fatal(err)
	}
	before, err := l.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var done atomic.Int64
	results := make(chan Result, 2)
	for _, vip := range []string{VIP6, VIP4} {
		go func() {
			r, err := l.Traffic(ctx, Load{Kind: HTTP, VIP: vip, Duration: 5 * time.Minute, Workers: 4, Done: &done})
			if err != nil {
				t.Error(err)
			}
			results <- r
		}()
	}
	time.Sleep(time.Second)
	disrupt(t)
	// Go on for 2 s more, and until minRequests were made (at most 2 min).
	time.Sleep(2 * time.Second)
	waitFor(2*time.Minute, func() bool { return done.Load() >= int64(minRequests) })
	cancel()
	var rs []Result
	for range 2 {
		rs = append(rs, <-results)
	}
	hr := held.Stop()
	misses, samples := watch.Stop()
	after, err := l.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ok, failed, late := 0, 0, 0
	for _, r := range rs {
		t.Log(r)
		ok += r.OK
		failed += r.Failed
		late += r.Causes[CauseClient]
	}
	t.Log(hr)
	t.Logf("ToR routes sampled %d times; VIP routes missing: %d", samples, len(misses))
	drops, _ := after.report(t.Logf, before)
	if late > 0 {
		t.Logf("%d requests failed only because the client did not run in time (its kernel had what they waited for before their deadline): not counted", late)
	}
	if failed-late != 0 {
		t.Errorf("%d of %d requests failed", failed-late, ok+failed)
	}
	if ok < minRequests {
		t.Errorf("only %d requests in the run; want at least %d", ok, minRequests)
	}
	if hr.Broken != 0 {
		t.Errorf("%d of %d established connections broke:\n%v", hr.Broken, hr.Conns, hr)
	}
	for _, m := range misses {
		t.Errorf("route withdrawn: %s", m)
	}
	if drops != 0 {
		t.Errorf("the nodes' data plane dropped %d packets during the run", drops)
	}
}

// TestRackRestarts: lb1's aird stopped for 2.5 s (SIGSTOP), restarted
// (SIGUSR2 and a new process: the restart outside systemd) and killed
// (SIGKILL, then started) under
// continuous traffic: no request fails, no established connection breaks,
// neither ToR ever stops routing the VIPs through lb1 (graceful restart
// holds them; BFD loss during it is a graceful restart too: BIRD's bfd
// graceful, FRR's check-control-plane-failure).
func TestRackRestarts(t *testing.T) {
	l := upLab(t)
	lb1 := l.LBs[0]
	// aird not running - stopped, as a stall of the loaded machine or the
	// gap of a restart would have it - must not hold its node's traffic:
	// the XDP data plane forwards alone (before attachXDPPass, the ToRs
	// took lb1's XDP_TX frames only once lb1's kernel sent a packet of
	// its own, and requests through lb1 waited until aird ran again).
	t.Run("SIGSTOP for 2.5s", func(t *testing.T) {
		underLoad(t, l, 2000, func(t *testing.T) {
			before, err := l.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if err := lb1.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2500 * time.Millisecond)
			if err := lb1.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			// A request held up is not a failed one: the client's
			// kernel says whether anything waited (a SYN or segment
			// unanswered for its retransmission timeout, 200 ms or
			// more, is sent again).
			after, err := l.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			c := after.Client.Sub(before.Client)
			if n := c["TcpExt.TCPSynRetrans"] + c["Tcp.RetransSegs"]; n != 0 {
				t.Errorf("the client sent %d SYNs and %d segments again while lb1's aird was stopped",
					c["TcpExt.TCPSynRetrans"], c["Tcp.RetransSegs"])
			}
		})
	})
	for _, how := range []string{"SIGUSR2", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			underLoad(t, l, 10000, func(t *testing.T) {
				var err error
				if how == "SIGKILL" {
					err = lb1.Kill()
				} else {
					err = lb1.StopWith(syscall.SIGUSR2)
				}
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Second) // down for a while
				if err := lb1.Start(); err != nil {
					t.Fatal(err)
				}
				if err := l.waitServing(); err != nil {
					t.Fatal(fmt.Errorf("after the restart: %w", err))
				}
			})
		})
	}
}
