package config

import (
	"reflect"
	"slices"
)

// ServicesDelta is how the services of one loaded configuration differ
// from another's, by position: what a reload must program. Every position
// of the new services is in one Kept run or in Changed; every position of
// the old ones is in one Kept run, or names a service in Changed (same
// name, changed), or is in Removed.
type ServicesDelta struct {
	// Kept are runs of services equal in both configurations (the VIP a
	// pool gave included): New[NewAt:NewAt+Len] is Old[OldAt:OldAt+Len].
	Kept []Run
	// Changed are the positions in the new services of the services that
	// are new or differ from the old service of their name, in order.
	Changed []int
	// Was are, for each of Changed, the position in the old services of
	// the service of its name, -1 for a new one.
	Was []int
	// Removed are the positions in the old services of the services whose
	// name the new configuration lacks, in order.
	Removed []int
}

// Run is one run of unchanged services.
type Run struct{ NewAt, OldAt, Len int }

// Empty reports whether nothing changed.
func (d *ServicesDelta) Empty() bool { return len(d.Changed) == 0 && len(d.Removed) == 0 }

// span is where the services of one file of a load are among its
// services: the file's own slice (which the Loader hands on unchanged, as
// the same slice, while the file is unchanged) and its offset.
type span struct {
	file string
	svcs []Service
	at   int
}

// DiffServices works out the services delta from a to b. A file whose
// services are the very slice of the earlier load (the Loader kept them)
// counts as unchanged without looking at them, but for their VIPs (the
// daemon fills in those a pool gives); the services of the other files are
// compared one by one, by name. The work is in proportion to the changed
// files' services, plus a comparison of every service's VIP.
func DiffServices(a, b *File) ServicesDelta {
	var d ServicesDelta
	oldSpans, newSpans := a.serviceSpans(), b.serviceSpans()
	oldByFile := make(map[string]int, len(oldSpans))
	for i, s := range oldSpans {
		oldByFile[s.file] = i
	}
	matched := make([]bool, len(oldSpans))
	var changed []span // new spans to compare service by service
	for _, ns := range newSpans {
		i, ok := oldByFile[ns.file]
		if ok && !matched[i] && sameSlice(oldSpans[i].svcs, ns.svcs) &&
			sameVIPs(a.Services[oldSpans[i].at:], b.Services[ns.at:ns.at+len(ns.svcs)]) {
			matched[i] = true
			if len(ns.svcs) > 0 {
				d.Kept = append(d.Kept, Run{NewAt: ns.at, OldAt: oldSpans[i].at, Len: len(ns.svcs)})
			}
			continue
		}
		changed = append(changed, ns)
	}
	oldByName := map[string]int{}
	for i, os := range oldSpans {
		if matched[i] {
			continue
		}
		for j := range os.svcs {
			oldByName[a.Services[os.at+j].Name] = os.at + j
		}
	}
	seen := make(map[int]bool, len(oldByName))
	for _, ns := range changed {
		for j := range ns.svcs {
			at := ns.at + j
			s := &b.Services[at]
			oi, ok := oldByName[s.Name]
			if ok {
				seen[oi] = true
			}
			if ok && sameService(&a.Services[oi], s) {
				d.Kept = append(d.Kept, Run{NewAt: at, OldAt: oi, Len: 1})
				continue
			}
			if !ok {
				oi = -1
			}
			d.Changed = append(d.Changed, at)
			d.Was = append(d.Was, oi)
		}
	}
	for _, oi := range oldByName {
		if !seen[oi] {
			d.Removed = append(d.Removed, oi)
		}
	}
	slices.Sort(d.Removed) // Changed is in order: the spans are
	return d
}

// serviceSpans returns the spans of f's services: one per file as the
// Loader merged them, or one over all of them for a File made otherwise.
func (f *File) serviceSpans() []span {
	n := 0
	for _, s := range f.spans {
		n += len(s.svcs)
	}
	if f.spans == nil || n != len(f.Services) {
		return []span{{file: f.Path, svcs: f.Services}}
	}
	return f.spans
}

// sameSlice reports whether a and b are the same slice: the same array and
// length.
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// sameVIPs reports whether the first len(b) services of a have b's VIPs.
func sameVIPs(a, b []Service) bool {
	if len(a) < len(b) {
		return false
	}
	for i := range b {
		if a[i].VIP != b[i].VIP || a[i].VIPAllocated != b[i].VIPAllocated {
			return false
		}
	}
	return true
}

// sameService reports whether two services are configured alike: their
// lists element by element (nil and empty alike), the rest as Diff
// compares it.
func sameService(a, b *Service) bool {
	if !slices.Equal(a.Backends, b.Backends) || !slices.Equal(a.AllowSources, b.AllowSources) ||
		!slices.Equal(a.Communities, b.Communities) {
		return false
	}
	x, y := *a, *b
	x.Backends, x.AllowSources, x.Communities = nil, nil, nil
	y.Backends, y.AllowSources, y.Communities = nil, nil, nil
	return reflect.DeepEqual(x, y)
}

// DiffFiles returns the sections that differ between a and b, as Diff,
// with the services compared by DiffServices (whose delta it returns):
// "services" is among the sections when the delta is not empty.
func DiffFiles(a, b *File) ([]string, ServicesDelta) {
	d := DiffServices(a, b)
	x, y := *a.Config, *b.Config
	x.Services, y.Services = nil, nil
	changed := Diff(&x, &y)
	if !d.Empty() {
		changed = append(changed, SectionServices)
		slices.SortStableFunc(changed, func(p, q string) int { return sectionOrder(p) - sectionOrder(q) })
	}
	return changed, d
}

// sectionOrder is a section's place in the schema.
func sectionOrder(name string) int {
	for i, s := range (&Config{}).sections() {
		if s.name == name {
			return i
		}
	}
	return -1
}
