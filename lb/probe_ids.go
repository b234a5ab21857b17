package lb

import (
	"fmt"
	"net/netip"
)

// probeBackendID returns the backend id of address a, for the mark of a
// tunnelled probe. A new backend gets its id (and its backends entry, which
// the probe program looks up) now, ahead of the Sync that puts it into
// Maglev tables, so its very first probe is tunnelled. Sync keeps the id;
// if the backend never makes it into a Sync, that Sync removes it again.
func (p *Programmer) probeBackendID(a netip.Addr) (uint32, error) {
	id, fresh, err := p.backendID(a)
	if err != nil {
		return 0, err
	}
	if fresh {
		if err := p.lb.SetBackend(id, a); err != nil {
			delete(p.backends, a)
			return 0, fmt.Errorf("program backend %s: %w", a, err)
		}
	}
	return id, nil
}
