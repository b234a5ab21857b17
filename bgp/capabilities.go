package bgp

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	api "github.com/osrg/gobgp/v4/api"
)

// noteCapabilities follows what a peer announced in the OPEN of a session
// that just came up (called from the watcher, so in a goroutine of its
// own). It says once per session what of ours the peer will not get, and
// when the peer's Extended Next Hop capability changes what IPv4 routes
// carry (see planNexthop), installs the export policy for it and re-sends
// our routes to that peer (soft reset out; only when we advertise IPv4
// routes, so a large IPv6 route set is not sent twice for nothing).
func (s *Speaker) noteCapabilities(r *run, addr netip.Addr, negotiated families, extNH bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != r {
		return
	}
	i := s.peerIndex(addr)
	if i < 0 {
		return
	}
	p := s.peers[i]
	was := s.extNH[addr]
	if extNH {
		s.extNH[addr] = true
	} else {
		delete(s.extNH, addr)
	}
	for _, fam := range []families{famIPv6, famIPv4} {
		switch {
		case !p.session.families.has(fam):
		case !negotiated.has(fam):
			s.log.Warn("bgp: the peer did not announce this address family: its routes are neither sent nor received",
				"peer", p.name, "family", fam.String())
		default:
			if plan := planNexthop(s.node, p.session, fam, extNH); !plan.sendable {
				s.log.Warn("bgp: routes of this family are not sent to the peer", "peer", p.name, "family", fam.String(), "why", plan.why)
			}
		}
	}
	if was == extNH || !dependsOnExtNH(s.node, p.session) {
		return
	}
	if err := saveExtNH(s.o.StateDir, s.extNH); err != nil {
		s.log.Warn("bgp: extended next hop: a restart will not remember it", "err", err)
	}
	pols, err := buildPolicies(s.cfg, s.node, s.peers, s.policyState())
	if err != nil {
		s.log.Error("bgp: extended next hop: policies", "peer", p.name, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	if err := r.srv.SetPolicies(ctx, pols.req); err != nil {
		s.log.Error("bgp: extended next hop: set policies", "peer", p.name, "err", err)
		return
	}
	s.policies = pols
	if extNH {
		s.log.Info("bgp: the peer announced extended next hop: IPv4 routes are sent with an IPv6 next hop (RFC 8950)", "peer", p.name)
	} else {
		s.log.Info("bgp: the peer no longer announces extended next hop: IPv4 routes are not sent", "peer", p.name)
	}
	if !s.advertised.hasIPv4() {
		return
	}
	err = r.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT})
	if err != nil {
		s.log.Warn("bgp: extended next hop: soft reset out", "peer", p.name, "err", err)
	}
}

// peerIndex returns the index in s.peers of the peer at addr, or -1.
// Called with s.mu held.
func (s *Speaker) peerIndex(addr netip.Addr) int {
	for i, p := range s.peers {
		if p.resolved() && p.session.address == addr {
			return i
		}
	}
	return -1
}

// policyState is what the policies depend on besides the configuration.
// Called with s.mu held.
func (s *Speaker) policyState() policyState {
	return policyState{drained: s.drain != drainNone, extNH: s.extNH}
}

// extNHFile remembers, across a restart (not a reboot: it is on tmpfs like
// the restart marker), the peers that announced Extended Next Hop, so that
// after a graceful restart our first UPDATEs, sent before the speaker saw
// the new OPEN, carry the IPv4 routes such a peer had: a helper flushes at
// our End-of-RIB what we did not resend.
func extNHFile(dir string) string { return filepath.Join(dir, "bgp-extended-nexthop") }

// loadExtNH reads the remembered peers (an address per line).
func loadExtNH(dir string, log *slog.Logger) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	b, err := os.ReadFile(extNHFile(dir))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("bgp: extended next hop: cannot read what the last run learned", "err", err)
		}
		return out
	}
	for line := range strings.Lines(string(b)) {
		if a, err := netip.ParseAddr(strings.TrimSpace(line)); err == nil {
			out[a] = true
		}
	}
	return out
}

// saveExtNH writes the peers that announced Extended Next Hop.
func saveExtNH(dir string, peers map[netip.Addr]bool) error {
	var b strings.Builder
	for _, a := range slices.SortedFunc(maps.Keys(peers), netip.Addr.Compare) {
		b.WriteString(a.String() + "\n")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := extNHFile(dir) + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, extNHFile(dir))
}
