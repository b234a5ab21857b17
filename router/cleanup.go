package router

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// Cleanup removes every endpoint of the store at statePath without a
// running manager (aird --cleanup): a container's veth (its side in the
// container goes with it), a VM tap's routes and gateway addresses, each
// endpoint's addresses (release, called per owner) and its record, and
// host links of aird's naming that no record holds. The endpoint programs
// go with the data plane's pins (datapath.Teardown). It returns how many
// endpoints it removed.
func Cleanup(statePath string, release func(owner string) error) (int, error) {
	st, err := openStore(statePath)
	if err != nil {
		return 0, fmt.Errorf("cleanup endpoints: %w", err)
	}
	defer st.close()
	eps, err := st.all()
	if err != nil {
		return 0, fmt.Errorf("cleanup endpoints: %w", err)
	}
	var errs []error
	n := 0
	for _, ep := range eps {
		if err := cleanupOne(ep, release); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := st.delete(ep.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if links, err := listLinks(); err == nil {
		for _, l := range links {
			if isHostIfName(l.Attrs().Name) && l.Type() == "veth" {
				_ = netlink.LinkDel(l)
			}
		}
	}
	return n, errors.Join(errs...)
}

func cleanupOne(ep *Endpoint, release func(string) error) error {
	var errs []error
	if l, err := netlink.LinkByName(ep.HostIf); err == nil {
		if ep.Kind == KindVM {
			errs = append(errs, removeHostRoutes(ep, l), removeTapGateways(l))
		} else if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", ep.HostIf, err))
		}
	}
	if release != nil {
		errs = append(errs, release(owner(ep.Name)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup endpoint %s: %w", ep.Name, err)
	}
	return nil
}
