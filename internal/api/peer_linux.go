package api

import (
	"encoding/binary"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerOf reads the credentials of a unix socket connection's peer.
func peerOf(c net.Conn) (*Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("a %T has no peer credentials", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var p *Peer
	var opErr error
	err = raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			opErr = fmt.Errorf("SO_PEERCRED: %w", err)
			return
		}
		p = &Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}
		p.Groups, opErr = peerGroups(int(fd))
	})
	if err != nil {
		return nil, err
	}
	return p, opErr
}

// peerGroups reads SO_PEERGROUPS: the peer's supplementary groups, as
// 32-bit ids.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]byte, 64*4)
	for {
		n := uint32(len(buf))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == syscall.ERANGE && int(n) > len(buf) && n <= 65536*4:
			buf = make([]byte, n)
			continue
		case errno != 0:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
		}
		groups := make([]uint32, n/4)
		for i := range groups {
			groups[i] = binary.NativeEndian.Uint32(buf[4*i:])
		}
		return groups, nil
	}
}
