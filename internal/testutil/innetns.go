package testutil

import (
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// InNetns runs f on the calling goroutine with its OS thread switched into
// the named network namespace (created by NewNetns), then switches back.
// Sockets and netlink handles opened inside f stay in that namespace after
// it returns. f must not start goroutines that expect the namespace.
func InNetns(t testing.TB, ns string, f func()) {
	t.Helper()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("open netns %s: %v", ns, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter netns %s: %v", ns, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime discards it when
			// the goroutine exits instead of reusing a thread in the
			// wrong namespace.
			t.Errorf("return from netns %s: %v", ns, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	f()
}
