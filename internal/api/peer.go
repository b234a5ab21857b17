package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
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
