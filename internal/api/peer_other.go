//go:build !linux

package api

import (
	"errors"
	"net"
)

// peerOf has no peer credentials to read outside Linux (the server runs on
// Linux only; this keeps the package, and airctl, building elsewhere).
func peerOf(net.Conn) (*Peer, error) {
	return nil, errors.New("peer credentials need Linux")
}
