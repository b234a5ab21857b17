package lab

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Failure causes: who a failed request waited for when it gave up.
const (
	// CauseLost: the kernel had not done the step the client waited for
	// (the handshake was not complete, the request not acknowledged): a
	// packet was lost or held up between the client and the backend.
	CauseLost = "lost"
	// CauseServer: the request was acknowledged and no answer came: the
	// backend's server did not answer in time.
	CauseServer = "server"
	// CauseClient: the kernel had done it before the request's deadline
	// (the connection was established, the answer was in the receive
	// queue) and the client did not look in time: the test client was
	// starved, nothing was lost.
	CauseClient = "client"
	// CauseReset: the connection was refused or reset.
	CauseReset = "reset"
)

// Failure is one failed request as the client's kernel saw it when the
// request gave up.
type Failure struct {
	At    time.Time `json:"at"`
	Err   string    `json:"err"`
	Phase string    `json:"phase"` // "dial" or "exchange"
	Cause string    `json:"cause"` // CauseLost, CauseClient, CauseReset
	// Elapsed is from the request's start to the error; Late is how far
	// after the request's deadline the error came (0: not after it).
	Elapsed time.Duration `json:"elapsed"`
	Late    time.Duration `json:"late"`
	// Arrived is when the kernel last received a segment of the
	// connection (the SYN-ACK in a dial, an answer in an exchange),
	// zero when none came.
	Arrived time.Time `json:"arrived,omitzero"`
	// State is the connection's TCP state then (ESTABLISHED, SYN_SENT,
	// ...), Retrans its retransmissions (in SYN_SENT: of the SYN),
	// Unacked the segments sent and not acknowledged, Queued the bytes
	// received that the client had not read.
	State   string `json:"state"`
	Retrans int    `json:"retrans"`
	Unacked int    `json:"unacked"`
	Queued  int    `json:"queued"`
}

func (f Failure) String() string {
	arrived := "nothing received"
	if !f.Arrived.IsZero() {
		arrived = "last received " + f.At.Sub(f.Arrived).Round(time.Millisecond).String() + " before"
	}
	return fmt.Sprintf("%s %s after %s (%s late): %s [%s: %s, %d retransmitted, %d unacknowledged, %d bytes unread, %s]",
		f.At.Format("15:04:05.000"), f.Phase, f.Elapsed.Round(time.Millisecond), f.Late.Round(time.Millisecond),
		f.Err, f.Cause, f.State, f.Retrans, f.Unacked, f.Queued, arrived)
}

// connProbe keeps a duplicate of a TCP socket's descriptor from the
// moment the dialer creates it, so that the kernel's view of the
// connection (TCP_INFO, the receive queue) can still be read when the
// request has failed and the dialer closed its own descriptor.
type connProbe struct{ fd int }

func newConnProbe() *connProbe { return &connProbe{fd: -1} }

// control is a net.Dialer Control function.
func (p *connProbe) control(_, _ string, c syscall.RawConn) error {
	var derr error
	err := c.Control(func(fd uintptr) {
		p.close()
		p.fd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		p.fd = -1
		return fmt.Errorf("duplicate the socket for TCP_INFO: %w", err)
	}
	return nil
}

// synRetrans returns how many times the connection's SYN was sent again
// (the kernel's count of retransmissions while the handshake ran; read
// right after the dial, before any data), -1 when unknown.
func (p *connProbe) synRetrans() int {
	if p.fd < 0 {
		return -1
	}
	ti, err := unix.GetsockoptTCPInfo(p.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return -1
	}
	return int(ti.Total_retrans)
}

// retransmitted returns how many segments the connection sent again so
// far (tcpi_total_retrans), 0 when unknown.
func (p *connProbe) retransmitted() int {
	if p.fd < 0 {
		return 0
	}
	ti, err := unix.GetsockoptTCPInfo(p.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0
	}
	return int(ti.Total_retrans)
}

// failure describes a request that failed with err in phase ("dial" or
// "exchange"), started at start with deadline: what the client's kernel
// had done by then decides the cause.
func (p *connProbe) failure(phase string, err error, start, deadline time.Time) Failure {
	now := time.Now()
	f := Failure{At: now, Err: err.Error(), Phase: phase, Elapsed: now.Sub(start), Late: max(0, now.Sub(deadline)), State: "unknown", Cause: CauseLost}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		f.Cause = CauseReset
	}
	if p.fd < 0 {
		return f
	}
	ti, terr := unix.GetsockoptTCPInfo(p.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if terr != nil {
		return f
	}
	f.State, f.Retrans, f.Unacked = tcpState(ti.State), int(ti.Total_retrans), int(ti.Unacked)
	if q, err := unix.IoctlGetInt(p.fd, unix.SIOCINQ); err == nil {
		f.Queued = q
	}
	// tcpi_last_ack_recv: ms since the last ACK (in a handshake, the
	// SYN-ACK); tcpi_last_data_recv: since the last data.
	last := ti.Last_ack_recv
	if phase == "exchange" {
		last = ti.Last_data_recv
	}
	inTime := false
	if ti.State == tcpEstablished && (phase == "dial" || f.Queued > 0) {
		f.Arrived = now.Add(-time.Duration(last) * time.Millisecond)
		inTime = !f.Arrived.After(deadline)
	}
	if f.Cause == CauseReset {
		return f
	}
	switch {
	case phase == "dial" && inTime:
		// The handshake was done before the deadline; the client did
		// not see it in time.
		f.Cause = CauseClient
	case phase == "dial":
		// Not done, or done only after the deadline.
		f.Cause = CauseLost
	case f.Queued > 0 && inTime:
		// The answer had arrived in time and was not read.
		f.Cause = CauseClient
	case f.Queued > 0:
		f.Cause = CauseLost
	case f.Unacked > 0:
		f.Cause = CauseLost
	default:
		f.Cause = CauseServer
	}
	return f
}

func (p *connProbe) close() {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}

const tcpEstablished = 1

// tcpState names a TCP state (include/net/tcp_states.h).
func tcpState(s uint8) string {
	names := []string{1: "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}
	if int(s) < len(names) && names[s] != "" {
		return names[s]
	}
	return fmt.Sprintf("state %d", s)
}

// stallMeter measures how late the client's own timers fire: a 10 ms
// sleep, again and again, for as long as the run lasts. Its worst delay is
// how long the client process could not run.
type stallMeter struct {
	stop chan struct{}
	done chan stall
}

// stall is the worst lateness a stallMeter saw and when it ended.
type stall struct {
	late time.Duration
	end  time.Time
}

func startStallMeter() *stallMeter {
	m := &stallMeter{stop: make(chan struct{}), done: make(chan stall, 1)}
	go func() {
		var worst stall
		for {
			select {
			case <-m.stop:
				m.done <- worst
				return
			default:
			}
			t := time.Now()
			time.Sleep(10 * time.Millisecond)
			if late := time.Since(t) - 10*time.Millisecond; late > worst.late {
				worst = stall{late, time.Now()}
			}
		}
	}()
	return m
}

// Stop returns the worst lateness seen and when it ended.
func (m *stallMeter) Stop() (time.Duration, time.Time) {
	close(m.stop)
	w := <-m.done
	return w.late, w.end
}
