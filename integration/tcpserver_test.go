package integration

import (
	"net"
	"sync"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

// serveTCP is the accept loop of the tests' backend servers: it listens on
// addr (host:port) inside ns and hands every connection to handle, each in
// its own goroutine; the connection is closed when handle returns.
//
// stop closes the listener: new connections are refused, established ones
// carry on. When the test ends the listener and every connection still open
// are closed, and serveTCP waits for the accept loop and every handler to
// return; handle must therefore return once its connection is closed.
func serveTCP(t *testing.T, ns, addr string, handle func(net.Conn)) (stop func()) {
	t.Helper()
	var ln net.Listener
	testutil.InNetns(t, ns, func() {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			t.Fatalf("listen on %s in %s: %v", addr, ns, err)
		}
	})
	stop = sync.OnceFunc(func() { ln.Close() })

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  = map[net.Conn]struct{}{}
		closed bool // the test is over: no more handlers
	)
	// The accept loop holds a count of wg while it adds the handlers',
	// so Add never races with the Wait in the cleanup.
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		stop()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return stop
}
