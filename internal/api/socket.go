package api

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
)

// ownedListener is a unix socket listener that, when closed, removes its
// socket file only if the path still holds that very socket: never a file
// that took its place.
type ownedListener struct {
	*net.UnixListener
	path string
	id   *syscall.Stat_t
	once sync.Once
}

func listenOwned(path string) (net.Listener, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	return &ownedListener{UnixListener: ln, path: path, id: st}, nil
}

func (l *ownedListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { _ = removeIfSocket(l.path, l.id) })
	return err
}

// removeIfSocket removes path if it is a socket (and, with id, that
// socket).
func removeIfSocket(path string, id *syscall.Stat_t) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Type() != os.ModeSocket || !ok || id != nil && (st.Dev != id.Dev || st.Ino != id.Ino) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
