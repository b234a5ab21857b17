package lab

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetns runs f on a new goroutine whose OS thread is moved into the named
// network namespace for good (the thread is discarded when the goroutine
// ends), and waits for it. Sockets f opens belong to that namespace and may
// be used from any goroutine afterwards.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// goInNetns starts f like inNetns but does not wait: it returns at once and
// f reports through its own channels.
func goInNetns(ns string, f func(err error)) {
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err == nil {
			defer h.Close()
			err = netns.Set(h)
		}
		f(err)
	}()
}
