package daemon

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/ipam"
	"github.com/aird-net/aird/router"
)

// RemoveEndpoints deletes every endpoint aird created (aird --cleanup):
// links, routes, addresses and records in the state directory. cfg may be
// nil (no configuration loads): the addresses then stay allocated in the
// IPAM store. It returns how many endpoints it removed.
func RemoveEndpoints(cfg *config.Config) (int, error) {
	dir := stateDir()
	path := filepath.Join(dir, "endpoints.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	var release func(string) error
	if cfg != nil {
		if a, err := ipam.Open(ipam.Options{Path: filepath.Join(dir, "ipam.db"), Pools: ipamPools(cfg)}); err == nil {
			defer a.Close()
			release = func(owner string) error { _, err := a.Release(owner); return err }
		}
	}
	return router.Cleanup(path, release)
}
