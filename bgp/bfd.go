package bgp

import (
	"fmt"
	"time"

	"github.com/aird-net/aird/internal/config"
	api "github.com/osrg/gobgp/v4/api"
)

// bfdConfig is a peer's single-hop BFD (RFC 5880, 5881) as GoBGP runs it:
// control packets to UDP 3784 with TTL 255, every minTx, expecting the
// peer's every minRx; the session is down after multiplier intervals
// without one, and GoBGP then resets the BGP session at once instead of
// waiting for the hold time. Comparable with ==; the zero value is off.
type bfdConfig struct {
	enabled      bool
	minRx, minTx uint32 // microseconds
	multiplier   uint8
}

func newBFDConfig(b config.BFD) (bfdConfig, error) {
	if !b.Enabled {
		return bfdConfig{}, nil
	}
	rx, tx := b.MinRx.D(), b.MinTx.D()
	switch {
	case rx < time.Millisecond || rx > time.Minute:
		return bfdConfig{}, fmt.Errorf("bfd.min-rx %s is out of range", rx)
	case tx < time.Millisecond || tx > time.Minute:
		return bfdConfig{}, fmt.Errorf("bfd.min-tx %s is out of range", tx)
	case b.Multiplier < 1 || b.Multiplier > 255:
		return bfdConfig{}, fmt.Errorf("bfd.multiplier %d is out of range 1..255", b.Multiplier)
	}
	return bfdConfig{
		enabled:    true,
		minRx:      uint32(rx.Microseconds()),
		minTx:      uint32(tx.Microseconds()),
		multiplier: uint8(b.Multiplier),
	}, nil
}

// apiBFD is GoBGP's per-peer BFD configuration; nil when off.
func (b bfdConfig) apiBFD() *api.BfdPeerConfig {
	if !b.enabled {
		return nil
	}
	return &api.BfdPeerConfig{
		Enabled:                  true,
		DesiredMinimumTxInterval: b.minTx,
		RequiredMinimumReceive:   b.minRx,
		DetectionMultiplier:      uint32(b.multiplier),
	}
}

// bfdStateName names GoBGP's BFD session state.
func bfdStateName(st api.BfdSessionState) string {
	switch st {
	case api.BfdSessionState_BFD_SESSION_STATE_UP:
		return "up"
	case api.BfdSessionState_BFD_SESSION_STATE_INIT:
		return "init"
	case api.BfdSessionState_BFD_SESSION_STATE_ADMIN_DOWN:
		return "admin-down"
	}
	return "down"
}
