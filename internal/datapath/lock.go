package datapath

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// pinLock is an exclusive flock on the pin directory: two aird processes
// must never drive the same pinned data plane. The kernel drops the lock
// when the holder exits, so a crashed aird never blocks its successor.
type pinLock struct{ fd int }

func lockPinDir(dir string) (*pinLock, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: another aird is using this pin path", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return &pinLock{fd: fd}, nil
}

func (l *pinLock) release() {
	if l != nil && l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}
