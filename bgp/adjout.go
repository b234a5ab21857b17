package bgp

import (
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// readAdjOut lists what is sent to the neighbour at addr (its GoBGP
// neighbour address, zone included for an unnumbered peer): our routes
// after that peer's export policy, so with its communities, prepends, MED
// and next hop as the peer receives them. GoBGP computes the view on
// demand; nothing is stored per peer for it.
func readAdjOut(srv *server.BgpServer, addr netip.Addr) ([]ribPath, error) {
	var out []ribPath
	for _, fam := range []gobgp.Family{gobgp.RF_IPv6_UC, gobgp.RF_IPv4_UC} {
		req := apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_OUT, Name: addr.String(), Family: fam}
		if err := srv.ListPath(req, collectPaths(&out, false, false)); err != nil {
			return nil, fmt.Errorf("list paths to %s %s: %w", addr, fam, err)
		}
	}
	for i := range out {
		out[i].local, out[i].peer = true, netip.Addr{}
	}
	return out, nil
}
