package bgp

import "time"

// withdrawBeforeCease withdraws our routes from every peer before a
// shutdown closes the sessions with CEASE. GoBGP writes the NOTIFICATION
// and closes the socket at once (fsm.sendNotification in pkg/server); when
// a packet of the peer is still unread on our side, that close is a TCP
// reset, and a peer that handles the reset before it reads the CEASE takes
// it for a failure and keeps our routes, stale, for the whole graceful-
// restart time: a stopped node would attract traffic for minutes. The
// withdrawals travel ahead of the CEASE on the same connection, so then
// there is nothing left to keep. Called with s.mu held; errors are logged,
// the stop goes on.
func (s *Speaker) withdrawBeforeCease(r *run) {
	n := s.advertised.len()
	if n == 0 {
		return
	}
	if _, err := deletePaths(r.srv, s.advertised.list()); err != nil {
		s.log.Warn("bgp: withdrawing before shutdown", "err", err)
		return
	}
	s.advertised = newRouteSet(0)
	// DeletePath returns once GoBGP has queued the withdrawals; its send
	// loops write them after that.
	time.Sleep(ceaseDelay(n))
}

// ceaseDelay is how long the withdrawal of n routes is given to leave
// before the CEASE: 100 ms, plus 10 µs a route (GoBGP packs and writes
// 100,000 withdrawals in well under a second here), at most 2 s.
func ceaseDelay(n int) time.Duration {
	return min(100*time.Millisecond+time.Duration(n)*10*time.Microsecond, 2*time.Second)
}
