package datapath

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/aird-net/aird/bpf"
)

// Datapath is the loaded XDP pipeline and the uplinks it is attached to.
// Its methods are safe for concurrent use.
type Datapath struct {
	mu      sync.Mutex
	opts    Options
	log     *slog.Logger
	pins    pins
	objs    *bpf.Objects // nil once closed
	node    *bpf.Node    // the writer of objs.Pipeline
	prog    *ebpf.Program
	progID  ebpf.ProgramID
	uplinks map[string]*uplink
	// affinity is the configured flow affinity by uplink name (SetFlowAffinity).
	affinity map[string]string
	// endpoints are the endpoint links attached (or adopted) by this
	// process, by host-side interface name.
	endpoints map[string]*uplink
	hc        *probeEgress // the probe program's link on lo, nil until AttachProbeEgress
	lock      *pinLock
	// privateBPFFS: aird mounted the bpffs in a private mount namespace.
	privateBPFFS bool
	// stalePins are the map pins the object does not have, found at Open
	// and removed once the new program is attached (removeStalePins).
	stalePins []string
}

// uplink is one attached interface.
type uplink struct {
	name    string
	ifindex int
	mode    string
	adopted bool
	link    link.Link
	linkID  link.ID
	// kindAffinity is the flow affinity the link's kind implies, kindFrom
	// says which kind (linkFlowAffinity).
	kindAffinity, kindFrom string
}

// Open loads the datapath objects, adopting compatible pinned maps under
// opts.PinPath/maps and pinning the others there. It attaches nothing; see
// SetUplinks.
func Open(opts Options) (*Datapath, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("datapath options: %w", err)
	}
	d := &Datapath{
		opts:    opts,
		log:     opts.logger().With("component", "datapath"),
		pins:    pins{root: opts.PinPath},
		uplinks: map[string]*uplink{},

		endpoints: map[string]*uplink{},
	}
	private, err := ensureBPFFS(d.log)
	if err != nil {
		return nil, fmt.Errorf("open datapath: %w", err)
	}
	d.privateBPFFS = private
	if err := d.pins.ensure(); err != nil {
		return nil, fmt.Errorf("open datapath: %w", err)
	}
	lock, err := lockPinDir(opts.PinPath)
	if err != nil {
		return nil, fmt.Errorf("open datapath: %w", err)
	}
	objs, err := d.load()
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("open datapath: %w", err)
	}
	prog := objs.Programs.XDP
	info, err := prog.Info()
	if err != nil {
		lock.release()
		_ = objs.Close()
		return nil, fmt.Errorf("open datapath: program info: %w", err)
	}
	id, _ := info.ID()
	d.objs, d.node, d.prog, d.progID, d.lock = objs, bpf.NewNode(objs.Pipeline), prog, id, lock
	d.log.Info("datapath loaded", "pin_path", opts.PinPath, "program_id", id)
	return d, nil
}

// Close releases the file descriptors of this process. Pinned links and maps
// stay: XDP keeps running and the next Open and SetUplinks adopt them. Use
// Teardown to remove them.
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return nil
	}
	var errs []error
	for _, up := range d.uplinks {
		if err := up.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close link of %s: %w", up.name, err))
		}
	}
	for _, ep := range d.endpoints {
		if err := ep.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close link of %s: %w", ep.name, err))
		}
	}
	if d.hc != nil {
		if err := d.hc.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close probe link: %w", err))
		}
	}
	if err := d.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	d.lock.release()
	d.objs, d.node, d.prog, d.uplinks, d.endpoints, d.hc = nil, nil, nil, nil, nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close datapath: %w", err)
	}
	return nil
}
