package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Peer is the process at the other end of a unix socket connection, as the
// kernel recorded it when the process connected (SO_PEERCRED and
// SO_PEERGROUPS): what it cannot forge, whatever the socket file's
// permissions.
type Peer struct {
	PID    int32
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups
}

func (p *Peer) String() string {
	return fmt.Sprintf("uid %d gid %d (pid %d)", p.UID, p.GID, p.PID)
}

// InGroup reports whether gid is the peer's group or one of its
// supplementary groups.
func (p *Peer) InGroup(gid uint32) bool {
	if p.GID == gid {
		return true
	}
	for _, g := range p.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

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

type peerKey struct{}

// withPeer is the server's ConnContext: it records a unix connection's
// peer (or why it has none) for the handlers.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	p, err := peerOf(c)
	if err != nil {
		return context.WithValue(ctx, peerKey{}, err)
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// peerFrom returns the peer of a request's connection.
func peerFrom(ctx context.Context) (*Peer, error) {
	switch v := ctx.Value(peerKey{}).(type) {
	case *Peer:
		return v, nil
	case error:
		return nil, v
	}
	return nil, errors.New("no peer credentials")
}

// peerUID names a connection's peer by uid, for the per-peer connection
// cap.
func peerUID(c net.Conn) string {
	if p, err := peerOf(c); err == nil {
		return "uid " + strconv.FormatUint(uint64(p.UID), 10)
	}
	return "an unknown peer"
}
