package bgp

import (
	api "github.com/osrg/gobgp/v4/api"
)

// maxDeferral caps the selection deferral of a restarting speaker: how long
// GoBGP holds back our updates waiting for End-of-RIB from every peer
// (RFC 4724 4.1). Peers keep our stale routes meanwhile; a dead peer must
// not delay the live ones for the whole restart time.
const maxDeferral = 30

// apiFamily is the unicast AFI/SAFI of one family.
func apiFamily(f families) *api.Family {
	if f == famIPv4 {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

// apiPeer is the GoBGP neighbour for a session (which has an address).
// restarting sets the Restart State and Forwarding State bits of the
// graceful restart capability (we are a restarting speaker that kept its
// FIB).
//
// A link-local session names the peer fe80::x%iface and binds the socket
// (and BFD's) to the interface; GoBGP takes the interface's own link-local
// address as the local address, and, with no next hop set by the export
// policy, as the next hop of our routes (RFC 8950 for IPv4 ones).
func (s session) apiPeer(restarting bool) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: s.address.String(),
			PeerAsn:         s.peerAS,
			LocalAsn:        s.localAS,
			AuthPassword:    s.password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      s.connectRetry,
			HoldTime:          s.holdTime,
			KeepaliveInterval: s.keepalive,
			// After GoBGP resets a session itself (BFD down, a peer
			// reset) it waits this long before connecting again, 30 s
			// by default: a node agent retries as after any failed
			// connect.
			IdleHoldTimeAfterReset: s.connectRetry,
		}},
		Transport: &api.Transport{PassiveMode: s.passive, BindInterface: s.bindInterface()},
		Bfd:       s.bfd.apiBFD(),
	}
	if s.multihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(s.multihop)}
	}
	if s.ttlSecurity {
		// GTSM (RFC 5082): send with TTL 255, accept only TTL 255, i.e.
		// a directly connected peer.
		p.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: 255}
	}
	if s.gracefulRestart {
		p.GracefulRestart = &api.GracefulRestart{
			Enabled:         true,
			RestartTime:     uint32(s.restartTime),
			DeferralTime:    uint32(min(s.restartTime, maxDeferral)),
			LocalRestarting: restarting,
		}
	}
	for _, f := range []families{famIPv6, famIPv4} {
		if !s.families.has(f) {
			continue
		}
		p.AfiSafis = append(p.AfiSafis, &api.AfiSafi{
			Config:            &api.AfiSafiConfig{Family: apiFamily(f), Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: s.gracefulRestart}},
		})
	}
	return p
}
