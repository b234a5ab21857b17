package bpf

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/cilium/ebpf"
)

// The maps of the datapath object come in sets, one per owner, each with
// exactly one writer in the daemon (TestEveryMapHasOneOwner checks that
// every map of the object is in exactly one set):
//
//	PipelineMaps  pipeline.h: internal/datapath writes them (Node)
//	LBMaps        lb_maps.h: the load balancer's control plane (LB)
//	RouterMaps    router_maps.h: the router's control plane (Router)
//
// The sets are filled from their struct tags by ebpf.Collection.Assign, so
// nothing else names maps.

// PipelineMaps are the maps that belong to the whole pipeline: settings,
// the node's addresses, the probe stage's configuration and the counters
// every stage counts into.
type PipelineMaps struct {
	Settings   *ebpf.Map `ebpf:"settings"`
	NodeAddrs  *ebpf.Map `ebpf:"node_addrs"`
	TunnelSrcs *ebpf.Map `ebpf:"tunnel_sources"`
	LocalAddrs *ebpf.Map `ebpf:"local_addrs"`
	Uplinks    *ebpf.Map `ebpf:"uplinks"`
	ProbeConf  *ebpf.Map `ebpf:"hc_conf"`
	// Stats holds every counter of the pipeline in one per-CPU value
	// (DatapathPipelineCounters; read with SumPipelineCounters).
	Stats *ebpf.Map `ebpf:"pipeline_stats"`
}

// LBMaps are the lb stage's maps: services (vips, and vip_sets, the copy
// the data path reads without a call), Maglev tables (and what the
// control plane installed there), backends and their per-CPU state (the
// next-hop cache and the per-backend counters), allow lists, conntrack
// (and ct_tags, its summary for a SYN) and the per-VIP counters.
type LBMaps struct {
	Vips       *ebpf.Map `ebpf:"vips"`
	VipSets    *ebpf.Map `ebpf:"vip_sets_v2"`
	Maglev     *ebpf.Map `ebpf:"maglev_v2"`
	MaglevMeta *ebpf.Map `ebpf:"maglev_meta"`
	Backends   *ebpf.Map `ebpf:"backends"`
	Allow      *ebpf.Map `ebpf:"allow"`
	BackendCPU *ebpf.Map `ebpf:"backend_cpu"`
	Conntrack  *ebpf.Map `ebpf:"conntrack_v2"`
	CtTags     *ebpf.Map `ebpf:"ct_tags_v2"`
	CtFlood    *ebpf.Map `ebpf:"ct_flood"`
	VipStats   *ebpf.Map `ebpf:"vip_stats"`
	// VipSetIndex is the hash whose low bits pick a vips key's VipSets
	// set; nil is VIPSetIndex, the hash of this package's object. A
	// caller that programs another build's object gives that object's.
	VipSetIndex func(DatapathVipKey) uint32
}

// RouterMaps are the router stage's maps: the node's endpoints, the
// sources each may use, the host-side interfaces, their counters and the
// router's events.
type RouterMaps struct {
	Endpoints      *ebpf.Map `ebpf:"endpoints"`
	EndpointSrcs   *ebpf.Map `ebpf:"endpoint_srcs"`
	EndpointIfaces *ebpf.Map `ebpf:"endpoint_ifaces"`
	EndpointStats  *ebpf.Map `ebpf:"endpoint_stats"`
	Events         *ebpf.Map `ebpf:"router_stats"`
	RouteCache     *ebpf.Map `ebpf:"route_cache"`
}

// IDOwnerMaps are the lb maps that give vip and backend ids their meaning:
// vips (key -> vip_id) and backends (id -> address).
func IDOwnerMaps() []string { return []string{DatapathMapVips, DatapathMapBackends} }

// IDDependentMaps are the lb maps whose entries are indexed by, or refer
// to, vip and backend ids. Adopting one of them from an earlier process is
// right only together with both IDOwnerMaps: otherwise a conntrack entry
// or an allow list would apply to whatever service or backend gets its id
// next.
func IDDependentMaps() []string {
	return []string{DatapathMapVipSetsV2, DatapathMapMaglevV2, DatapathMapMaglevMeta, DatapathMapAllow, DatapathMapBackendCpu,
		DatapathMapConntrackV2, DatapathMapVipStats}
}

// Programs are the datapath's entry programs.
type Programs struct {
	// XDP is aird_xdp, attached to every uplink.
	XDP *ebpf.Program `ebpf:"aird_xdp"`
	// Endpoint is aird_xdp_ep, attached to the host side of every
	// endpoint's link.
	Endpoint *ebpf.Program `ebpf:"aird_xdp_ep"`
	// Probe is aird_hc, the tcx egress program on lo that tunnels the
	// node's health probes.
	Probe *ebpf.Program `ebpf:"aird_hc"`
}

// Constants are the load-time constants of a loaded datapath (read-only).
type Constants struct {
	// CtSets is the number of conntrack sets per CPU.
	CtSets *ebpf.Variable `ebpf:"ct_sets"`
}

// Objects is a loaded datapath, split by owner.
type Objects struct {
	Pipeline  PipelineMaps
	LB        LBMaps
	Router    RouterMaps
	Programs  Programs
	Constants Constants
}

// NewObjects takes the maps and programs out of a loaded datapath
// collection into their sets. The collection keeps only what belongs to no
// set (its internal .rodata and similar), which the caller still closes.
// It fails when a set's object is missing or an object has no set.
func NewObjects(coll *ebpf.Collection) (*Objects, error) {
	o := &Objects{}
	for _, set := range []any{&o.Pipeline, &o.LB, &o.Router, &o.Programs, &o.Constants} {
		if err := coll.Assign(set); err != nil {
			_ = o.Close()
			return nil, fmt.Errorf("datapath objects: %w", err)
		}
	}
	var stray []string
	for name := range coll.Maps {
		if !strings.HasPrefix(name, ".") {
			stray = append(stray, "map "+name)
		}
	}
	for name := range coll.Programs {
		stray = append(stray, "program "+name)
	}
	if len(stray) > 0 {
		_ = o.Close()
		return nil, fmt.Errorf("datapath objects: %s in no set (bpf/maps.go)", strings.Join(stray, ", "))
	}
	return o, nil
}

// LoadObjects loads the datapath configured by cfg into the kernel (no
// pins: tests and benchmarks; the daemon loads through internal/datapath).
func LoadObjects(cfg Config, opts *ebpf.CollectionOptions) (*Objects, error) {
	spec, err := LoadSpecWith(cfg)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &ebpf.CollectionOptions{}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, *opts)
	if err != nil {
		return nil, err
	}
	defer coll.Close()
	return NewObjects(coll)
}

// Close closes every map and program of o.
func (o *Objects) Close() error {
	var errs []error
	for _, set := range []any{&o.Pipeline, &o.LB, &o.Router, &o.Programs} {
		v := reflect.ValueOf(set).Elem()
		for i := range v.NumField() {
			if c, ok := v.Field(i).Interface().(interface{ Close() error }); ok && !v.Field(i).IsNil() {
				errs = append(errs, c.Close())
			}
		}
	}
	return errors.Join(errs...)
}

// ViewLB returns the lb maps of a collection without taking them out of it
// (the collection still owns and closes them): for benchmarks that load
// variants of the object themselves.
func ViewLB(coll *ebpf.Collection) (LBMaps, error) {
	var m LBMaps
	return m, view(coll, &m)
}

// ViewRouter is ViewLB for the router's maps.
func ViewRouter(coll *ebpf.Collection) (RouterMaps, error) {
	var m RouterMaps
	return m, view(coll, &m)
}

// ViewPipeline is ViewLB for the pipeline's maps.
func ViewPipeline(coll *ebpf.Collection) (PipelineMaps, error) {
	var m PipelineMaps
	return m, view(coll, &m)
}

// view fills the *ebpf.Map fields of the struct set points to from coll by
// their ebpf tags.
func view(coll *ebpf.Collection, set any) error {
	v := reflect.ValueOf(set).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("ebpf")
		if name == "" {
			continue
		}
		m := coll.Maps[name]
		if m == nil {
			return fmt.Errorf("datapath objects: missing map %q", name)
		}
		v.Field(i).Set(reflect.ValueOf(m))
	}
	return nil
}
