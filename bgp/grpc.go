package bgp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// GoBGP's gRPC API (for the gobgp CLI) is served only on a unix socket,
// never on TCP: whoever reaches it controls the routing of the node. The
// socket is made mode 0600 (root only).

// prepareGRPCSocket removes a socket left by an earlier process; any other
// file at that path is an error.
func prepareGRPCSocket(path string) error {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("grpc socket: %w", err)
	case st.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("grpc socket %s exists and is not a socket", path)
	default:
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("grpc socket: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("grpc socket: %w", err)
	}
	return nil
}

// secureGRPCSocket waits for GoBGP to create the socket (it listens in a
// goroutine and only logs failures) and restricts it to root.
func secureGRPCSocket(path string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		st, err := os.Lstat(path)
		if err == nil && st.Mode().Type() == fs.ModeSocket {
			if err := os.Chmod(path, 0o600); err != nil {
				return fmt.Errorf("grpc socket: %w", err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("grpc socket %s did not appear within %s (see GoBGP's log)", path, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
