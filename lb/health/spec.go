package health

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Check kinds.
const (
	TypeNone = "none"
	TypeTCP  = "tcp"
	TypeHTTP = "http"
)

// Probe paths, reported in Status.Via.
const (
	ViaTunnel = "tunnel" // to the VIP, marked: the data plane tunnels it to the backend
	ViaDirect = "direct" // to the backend's own address
)

// Spec says how to probe one target.
type Spec struct {
	Type   string
	Dest   netip.AddrPort // where the probe connects (a VIP or the backend itself)
	Source netip.Addr     // local address of the probe; invalid: the kernel's choice
	Mark   uint32         // socket mark the Dialer applies (0 = none)
	// Via and Fallback only describe the path for Status: Via is
	// ViaTunnel or ViaDirect, Fallback why a check configured to go
	// through the tunnel goes direct.
	Via        string
	Fallback   string
	Host       string // HTTP Host header; default Dest's address
	Path       string // HTTP path
	StatusMin  int    // accepted HTTP status range
	StatusMax  int
	Interval   time.Duration
	Timeout    time.Duration
	Rise, Fall int
}

// Validate reports whether s can be probed.
func (s Spec) Validate() error {
	switch s.Type {
	case TypeNone:
		return nil
	case TypeTCP, TypeHTTP:
	default:
		return fmt.Errorf("unknown check type %q", s.Type)
	}
	switch {
	case !s.Dest.IsValid() || s.Dest.Port() == 0:
		return errors.New("a probe needs a destination address and port")
	case s.Interval <= 0 || s.Timeout <= 0 || s.Timeout > s.Interval:
		return fmt.Errorf("interval %s and timeout %s must be positive, timeout at most interval", s.Interval, s.Timeout)
	case s.Rise < 1 || s.Fall < 1:
		return errors.New("rise and fall must be at least 1")
	case s.Type == TypeHTTP && (s.StatusMin < 100 || s.StatusMax < s.StatusMin):
		return fmt.Errorf("bad HTTP status range %d-%d", s.StatusMin, s.StatusMax)
	}
	return nil
}
