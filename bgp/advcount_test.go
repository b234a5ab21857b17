package bgp

import (
	"context"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// The advertised counts are read from GoBGP again only after a change of
// what it may export; a scrape may reuse them for a while; with the gRPC
// API served every read by airctl goes to GoBGP.
func TestAdvertisedCountsReadAgainOnlyAfterAChange(t *testing.T) {
	for _, shared := range []bool{false, true} {
		srv := newGoBGPServer(shared)
		go srv.Serve()
		ctx := context.Background()
		if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65001, RouterId: "10.0.0.1", ListenPort: -1}}); err != nil {
			t.Fatal(err)
		}
		var c advertisedCounts
		read := func(budgeted bool) time.Time {
			t.Helper()
			if _, err := c.get(ctx, srv, budgeted); err != nil {
				t.Fatal(err)
			}
			return c.at
		}
		first := read(false)
		if again := read(false); again.Equal(first) == shared {
			t.Errorf("shared %t: nothing changed, read again: %t", shared, !again.Equal(first))
		}
		before := read(false)
		holds := newRouteSet(0)
		want, err := localRoutes([]Route{{Prefix: netip.MustParsePrefix("fd00:300::1/128")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := addPaths(srv, want, holds); err != nil {
			t.Fatal(err)
		}
		if after := read(false); after.Equal(before) {
			t.Errorf("shared %t: a path was added and the counts were not read again", shared)
		}
		// A scrape right after a change reuses a count younger than
		// scrapeCountShare times its cost, and reads again after that.
		srv.changed()
		c.mu.Lock()
		c.cost, c.at = time.Hour, time.Now()
		c.mu.Unlock()
		at := c.at
		if read(true) != at {
			t.Errorf("shared %t: a scrape within the budget read the counts again", shared)
		}
		c.mu.Lock()
		c.cost = time.Millisecond
		c.at = time.Now().Add(-time.Second)
		c.mu.Unlock()
		if read(true).Before(time.Now().Add(-time.Second / 2)) {
			t.Errorf("shared %t: a scrape past the budget reused the counts", shared)
		}
		if err := srv.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
			t.Fatal(err)
		}
	}
}
