package bgp

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// gobgpServer is GoBGP's server with a count of the calls that can change
// what it exports: our paths, the policies, the peers. Together with the
// session events (changed, from the watcher) that count says whether the
// advertised counts read earlier still hold.
type gobgpServer struct {
	*server.BgpServer
	changes atomic.Uint64
	// shared is set when GoBGP's gRPC API is served: the gobgp CLI can
	// change paths and policies behind the count's back.
	shared bool
}

func newGoBGPServer(shared bool, opts ...server.ServerOption) *gobgpServer {
	return &gobgpServer{BgpServer: server.NewBgpServer(opts...), shared: shared}
}

// changed records a change of what may be exported.
func (g *gobgpServer) changed() { g.changes.Add(1) }

func (g *gobgpServer) AddPath(req apiutil.AddPathRequest) ([]apiutil.AddPathResponse, error) {
	defer g.changed()
	return g.BgpServer.AddPath(req)
}

func (g *gobgpServer) DeletePath(req apiutil.DeletePathRequest) error {
	defer g.changed()
	return g.BgpServer.DeletePath(req)
}

func (g *gobgpServer) SetPolicies(ctx context.Context, r *api.SetPoliciesRequest) error {
	defer g.changed()
	return g.BgpServer.SetPolicies(ctx, r)
}

func (g *gobgpServer) SetPolicyAssignment(ctx context.Context, r *api.SetPolicyAssignmentRequest) error {
	defer g.changed()
	return g.BgpServer.SetPolicyAssignment(ctx, r)
}

func (g *gobgpServer) AddPeer(ctx context.Context, r *api.AddPeerRequest) error {
	defer g.changed()
	return g.BgpServer.AddPeer(ctx, r)
}

func (g *gobgpServer) DeletePeer(ctx context.Context, r *api.DeletePeerRequest) error {
	defer g.changed()
	return g.BgpServer.DeletePeer(ctx, r)
}

func (g *gobgpServer) ResetPeer(ctx context.Context, r *api.ResetPeerRequest) error {
	defer g.changed()
	return g.BgpServer.ResetPeer(ctx, r)
}

// advertisedCounts caches how many paths GoBGP sends each peer, per
// family. GoBGP keeps no such count: asking for it (ListPeer with
// EnableAdvertised) runs the export of every route to every session again,
// which at 100,000 routes took 0.3-0.6 s and allocated ~80 MB per call.
// The counts are read again only after a change (gobgpServer.changes);
// for the metrics, while routes keep changing, not more often than keeps
// the counting under 1/scrapeCountShare of the time.
type advertisedCounts struct {
	mu     sync.Mutex // held while reading, so concurrent readers share one read
	valid  bool
	gen    uint64
	at     time.Time
	cost   time.Duration // how long the last read took
	byAddr map[netip.Addr]map[families]int
}

// scrapeCountShare bounds the time scrapes spend counting: a count is
// reused for scrapeCountShare times as long as it took to make (a 0.5 s
// count at 100,000 routes is reused for 10 s; a 1 ms count for 20 ms).
const scrapeCountShare = 20

// get returns the counts, read again when something changed since the last
// read (with the gRPC API served: always). With budgeted (the metrics) a
// read younger than scrapeCountShare times its cost is reused anyway.
func (c *advertisedCounts) get(ctx context.Context, srv *gobgpServer, budgeted bool) (map[netip.Addr]map[families]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := srv.changes.Load()
	if c.valid && gen == c.gen && !srv.shared {
		return c.byAddr, nil
	}
	if c.valid && budgeted && time.Since(c.at) < scrapeCountShare*c.cost {
		return c.byAddr, nil
	}
	start := time.Now()
	out := map[netip.Addr]map[families]int{}
	err := srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		if p.Conf == nil {
			return
		}
		a, err := netip.ParseAddr(p.Conf.NeighborAddress)
		if err != nil {
			return
		}
		m := map[families]int{}
		for _, af := range p.AfiSafis {
			if af.State != nil && af.Config != nil && af.Config.Family != nil {
				m[familyOfAFI(af.Config.Family.Afi)] += int(af.State.Advertised)
			}
		}
		out[a.Unmap()] = m
	})
	if err != nil {
		return nil, err
	}
	c.valid, c.gen, c.at, c.cost, c.byAddr = true, gen, start, time.Since(start), out
	return out, nil
}

func familyOfAFI(afi api.Family_Afi) families {
	if afi == api.Family_AFI_IP {
		return famIPv4
	}
	return famIPv6
}
