package lab

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

// TestRequestFailureCauses: the traffic generator's account of a failed
// request follows what the client's kernel had done when it gave up: a
// SYN dropped on its way (nftables) is "lost", with the SYN sent again; a
// server that accepts and never answers is "server"; a handshake done, or
// an answer arrived, that the client had not seen is "client".
func TestRequestFailureCauses(t *testing.T) {
	testutil.RequireCommand(t, "nft")
	ns := testutil.NewNetns(t, "altcp-")
	testutil.Run(t, "ip", "netns", "exec", ns, "nft", "add table inet t; add chain inet t in { type filter hook input priority 0; }; add rule inet t in tcp dport 7001 tcp flags syn drop")
	err := inNetns(ns, func() error {
		silent, err := net.Listen("tcp", "127.0.0.1:7002")
		if err != nil {
			return err
		}
		defer silent.Close()
		answers, err := net.Listen("tcp", "127.0.0.1:7003")
		if err != nil {
			return err
		}
		defer answers.Close()
		go func() {
			for {
				c, err := silent.Accept()
				if err != nil {
					return
				}
				defer c.Close() // held open, unanswered, until the listener closes
			}
		}()
		go func() {
			for {
				c, err := answers.Accept()
				if err != nil {
					return
				}
				go func() { // the echo service: its name, then an echo
					defer c.Close()
					if _, err := c.Write([]byte("web-1\n")); err == nil {
						_, _ = io.Copy(c, c)
					}
				}()
			}
		}()
		_, _ = net.Listen("tcp", "127.0.0.1:7001") // SYNs to it are dropped
		ctx := context.Background()

		// The SYN dropped: the kernel sends it again after 1 s.
		o := request(ctx, TCP, "127.0.0.1:7001", 1500*time.Millisecond)
		if f := o.failure; f == nil || f.Phase != "dial" || f.Cause != CauseLost || f.State != "SYN_SENT" || f.Retrans < 1 || o.synRetrans < 1 {
			t.Errorf("SYN dropped: %+v, SYN sent again %d times; want a lost dial, SYN_SENT, sent again", f, o.synRetrans)
		}
		// Accepted, never answered.
		o = request(ctx, TCP, "127.0.0.1:7002", 500*time.Millisecond)
		if f := o.failure; f == nil || f.Phase != "exchange" || f.Cause != CauseServer || f.State != "ESTABLISHED" || o.synRetrans != 0 {
			t.Errorf("no answer: %+v; want the server's fault on an established connection", f)
		}
		// The client late: the kernel holds what it waited for.
		p := newConnProbe()
		defer p.close()
		d := net.Dialer{Control: p.control}
		start := time.Now()
		c, err := d.Dial("tcp", "127.0.0.1:7003")
		if err != nil {
			return err
		}
		defer c.Close()
		deadline := time.Now().Add(time.Second)
		if f := p.failure("dial", os.ErrDeadlineExceeded, start, deadline); f.Cause != CauseClient || f.State != "ESTABLISHED" {
			t.Errorf("handshake done, not seen: %+v; want the client's fault", f)
		}
		// Done only after the deadline: not the client's fault.
		if f := p.failure("dial", os.ErrDeadlineExceeded, start, start.Add(-time.Second)); f.Cause != CauseLost {
			t.Errorf("handshake done after the deadline: %+v; want lost (late)", f)
		}
		if !waitFor(5*time.Second, func() bool { q, _ := unix.IoctlGetInt(p.fd, unix.SIOCINQ); return q > 0 }) {
			t.Fatal("the answer never arrived")
		}
		if f := p.failure("exchange", os.ErrDeadlineExceeded, start, time.Now().Add(time.Second)); f.Cause != CauseClient || f.Queued != len("web-1\n") {
			t.Errorf("answer arrived, not read: %+v; want the client's fault, %d bytes queued", f, len("web-1\n"))
		}
		// And a request that works reports no retransmission.
		o = request(ctx, TCP, "127.0.0.1:7003", time.Second)
		if o.failure != nil || o.synRetrans != 0 {
			t.Errorf("a request answered: %+v, SYN sent again %d times", o.failure, o.synRetrans)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
