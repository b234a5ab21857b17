package config

import (
	"net/netip"
	"reflect"
	"slices"
)

// servicesFile is the schema of an included file: [[services]] only.
type servicesFile struct {
	Services []Service `toml:"services"`
}

// unit is the services of one file (the main file or an included one) as
// the cross-file checks need them: validated on their own against the main
// file's other sections.
type unit struct {
	file     string
	services []Service
	backends []netip.Addr // the distinct backend addresses, in order
	allow    int          // allow-sources entries
}

func newUnit(file string, svcs []Service) *unit {
	u := &unit{file: file, services: svcs}
	seen := map[netip.Addr]struct{}{}
	for i := range svcs {
		u.allow += len(svcs[i].AllowSources)
		for _, b := range svcs[i].Backends {
			if _, dup := seen[b.Address]; !dup {
				seen[b.Address] = struct{}{}
				u.backends = append(u.backends, b.Address)
			}
		}
	}
	// In order: sorting every backend instead (a file's million, at
	// worst) cost a tenth of a start.
	slices.SortFunc(u.backends, func(a, b netip.Addr) int { return a.Compare(b) })
	return u
}

// parseIncluded decodes and validates an included file against the main
// file's configuration (its pools, node and lb sections), with the same
// limits, passes and error reporting as Parse.
func parseIncluded(name string, data []byte, main *Config) (*unit, error) {
	sh, raw, err := parseBounded(name, data)
	if err != nil {
		return nil, err
	}
	data = sh.data
	if svcs := buildIncluded(&reporter{file: name, fast: true, raw: raw}, raw, main); svcs != nil {
		return newUnit(name, svcs), nil
	}
	r := &reporter{file: name, pos: scanPositions(data)}
	svcs := buildIncluded(r, raw, main)
	if err := r.err(); err != nil {
		return nil, err
	}
	return newUnit(name, svcs), nil
}

// buildIncluded decodes an included file's services and checks them as
// validate checks the main file's, within the file; checkUnits then checks
// them against the other files. The result is nil at a problem in the
// fast pass; never nil otherwise.
func buildIncluded(r *reporter, raw map[string]any, main *Config) []Service {
	var sf servicesFile
	(&decoder{r: r}).decode("", raw, reflect.ValueOf(&sf).Elem())
	if r.fast && r.bad {
		return nil
	}
	r.checking = true
	finishServices(sf.Services)
	c := *main
	c.Services = sf.Services
	v := &validator{r: r, c: &c, included: true}
	v.services()
	v.self()
	v.lbLimits()
	if r.fast && r.bad {
		return nil
	}
	if sf.Services == nil {
		sf.Services = []Service{}
	}
	return sf.Services
}
