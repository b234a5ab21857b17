package config

import (
	"runtime"
	"strings"
	"sync"
)

// A large file is parsed on every CPU: the TOML parser is most of the
// cost of loading 10,000 services (about 1 s of CPU for 16 MB), and it
// runs on one CPU. splitServices cuts the file at its top-level
// [[services]] headers (those the shape scan found: never text inside a
// string or an array), each part is decoded on its own, and the parts'
// trees are merged into the tree one decode of the whole file gives.
// Nothing else changes: the merged tree goes through the same decoding
// and checks. Whenever the cut is not certain to give that tree, or any
// part fails to decode, the file is decoded whole, so a bad file gets the
// parser's error as it always did.

// splitMinSize is the smallest file decoded in parts: below it, the
// parts' goroutines and copies cost more than they save.
const splitMinSize = 1 << 20

// splitPlan is how a file is cut: rest is every part that is not a
// service (the text before the first header, and the other tables, in
// their order), and services are runs of whole [[services]] elements in
// file order, each with the headers of its sub-tables.
type splitPlan struct {
	rest     string
	services []string
}

// serviceSegment is the text from one table header to the next (or to
// the end of the file).
type serviceSegment struct {
	start, end int
	service    bool // an element of services or one of its sub-tables
	element    bool // starts an element: [[services]]
}

// serviceSegments cuts data at the headers the shape scan found, each
// header starting a segment up to the next one; the text before the first
// header is the root table's. ok is false when the file is written in a
// way a cut might change the meaning of (a [services] table, a sub-table
// of a service after another table or before any service: all left to
// the parser, which rejects or accepts them whole). elements is how many
// [[services]] elements there are.
func serviceSegments(headers []shapeHeader, size int) (segs []serviceSegment, elements int, ok bool) {
	segs = make([]serviceSegment, 0, len(headers))
	for i, h := range headers {
		end := size
		if i+1 < len(headers) {
			end = headers[i+1].at
		}
		sg := serviceSegment{start: h.at, end: end}
		if h.first == "services" {
			switch {
			case h.keys == 1 && h.array:
				sg.service, sg.element = true, true
				elements++
			case h.keys > 1 && len(segs) > 0 && segs[len(segs)-1].service:
				sg.service = true
			default:
				return nil, 0, false
			}
		}
		segs = append(segs, sg)
	}
	return segs, elements, true
}

// splitServices cuts data at the headers the shape scan found
// (serviceSegments) into the parts of a plan; ok is false when the file
// is not to be decoded in parts: fewer than two services, or a file
// serviceSegments does not cut. parts is how many runs of services to
// make.
func splitServices(data []byte, headers []shapeHeader, parts int) (plan splitPlan, ok bool) {
	if parts < 2 {
		return plan, false
	}
	segs, elements, ok := serviceSegments(headers, len(data))
	if !ok || elements < 2 {
		return plan, false
	}
	parts = min(parts, elements)
	serviceBytes := 0
	for _, sg := range segs {
		if sg.service {
			serviceBytes += sg.end - sg.start
		}
	}
	var rest, run strings.Builder
	if len(headers) > 0 {
		rest.Write(data[:headers[0].at])
	} else {
		rest.Write(data)
	}
	target := max(1, serviceBytes/parts)
	for _, sg := range segs {
		switch {
		case !sg.service:
			rest.Write(data[sg.start:sg.end])
		default:
			if sg.element && run.Len() >= target {
				plan.services = append(plan.services, run.String())
				run = strings.Builder{}
			}
			if run.Len() == 0 {
				run.Grow(target + target/8)
			}
			run.Write(data[sg.start:sg.end])
		}
	}
	if run.Len() > 0 {
		plan.services = append(plan.services, run.String())
	}
	plan.rest = rest.String()
	return plan, len(plan.services) > 1
}

// decodeParts decodes the parts of plan, the runs of services on up to
// workers goroutines, and merges them. ok is false when a part does not
// decode, or does not give what the cut expects (the rest holds a
// services key, a run holds anything but services): the caller then
// decodes the file whole.
func decodeParts(plan splitPlan, workers int) (raw map[string]any, ok bool) {
	runs := make([][]map[string]any, len(plan.services))
	fails := make([]bool, len(plan.services))
	var wg sync.WaitGroup
	next := make(chan int, len(plan.services))
	for i := range plan.services {
		next <- i
	}
	close(next)
	for range min(workers, len(plan.services)) {
		wg.Go(func() {
			for i := range next {
				t, err := decodeTOMLString(plan.services[i])
				elems, isTables := t["services"].([]map[string]any)
				if err != nil || len(t) != 1 || !isTables {
					fails[i] = true
					continue
				}
				runs[i] = elems
			}
		})
	}
	raw, err := decodeTOMLString(plan.rest)
	wg.Wait()
	if err != nil {
		return nil, false
	}
	if _, taken := raw["services"]; taken {
		return nil, false
	}
	if raw == nil { // no text but services
		raw = map[string]any{}
	}
	n := 0
	for i, r := range runs {
		if fails[i] {
			return nil, false
		}
		n += len(r)
	}
	services := make([]map[string]any, 0, n)
	for _, r := range runs {
		services = append(services, r...)
	}
	raw["services"] = services
	return raw, true
}

// decodeFile runs the TOML parser over data, in parts on every CPU when
// the file is large (splitServices), else whole.
func decodeFile(data []byte, headers []shapeHeader) (map[string]any, error) {
	workers := runtime.GOMAXPROCS(0)
	if len(data) < splitMinSize || workers < 2 {
		return decodeTOML(data)
	}
	if plan, ok := splitServices(data, headers, 4*workers); ok {
		if raw, ok := decodeParts(plan, workers); ok {
			return raw, nil
		}
	}
	return decodeTOML(data)
}
