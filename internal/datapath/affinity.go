package datapath

import (
	"fmt"
	"maps"

	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/bpf"
)

// Flow affinity of an uplink: whether every packet of a flow received on
// it is processed on one CPU. The lb stage's conntrack is partitioned per
// CPU; on a one-cpu uplink new flows skip the other CPUs' partitions (no
// sweep of a SYN's tuple, no search on a miss: bpf/lb.h).
const (
	FlowAffinityAuto   = "auto"    // from the link's kind (linkFlowAffinity)
	FlowAffinityOneCPU = "one-cpu" // a NIC whose RSS keeps a flow on one queue and CPU
	FlowAffinityAnyCPU = "any-cpu" // veth, tap: XDP runs on the sending CPU
)

// linkFlowAffinity is the flow affinity a link's kind implies, and why. A
// hardware device (no rtnetlink kind) runs XDP in the NAPI poll of the
// receive queue RSS hashed the flow to, so one CPU sees the whole flow; a
// bond runs it on its slaves' queues. Every software link - veth, tun/tap,
// macvlan, vxlan, ... - runs XDP where the frame was sent or
// re-injected, which is any CPU: the safe answer for kinds not known here.
func linkFlowAffinity(l netlink.Link) (affinity, from string) {
	kind := l.Type()
	switch kind {
	case "device":
		return FlowAffinityOneCPU, "link kind: hardware device (RSS)"
	case "bond":
		return FlowAffinityOneCPU, "link kind: bond (its slaves' RSS)"
	}
	return FlowAffinityAnyCPU, "link kind: " + kind
}

// SetFlowAffinity sets the flow affinity of uplinks by name: "one-cpu" or
// "any-cpu" override what the link's kind implies; a name absent or
// "auto" takes that. Names that are not uplinks (yet) are kept for when
// they are. The uplinks map is rewritten at once - unless this process
// has attached no uplink yet (a start: SetUplinks writes it), so that a
// restart does not empty the map it adopted until the uplinks are back.
func (d *Datapath) SetFlowAffinity(byName map[string]string) error {
	for name, a := range byName {
		switch a {
		case FlowAffinityAuto, FlowAffinityOneCPU, FlowAffinityAnyCPU:
		default:
			return fmt.Errorf("set flow affinity of %s: %q is not %q, %q or %q", name, a, FlowAffinityAuto, FlowAffinityOneCPU, FlowAffinityAnyCPU)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return fmt.Errorf("set flow affinity: datapath is closed")
	}
	d.affinity = maps.Clone(byName)
	if len(d.uplinks) == 0 {
		return nil
	}
	if err := d.writeUplinks(); err != nil {
		return fmt.Errorf("set flow affinity: %w", err)
	}
	return nil
}

// flowAffinity is up's flow affinity in force, and where it comes from.
func (d *Datapath) flowAffinity(up *uplink) (affinity, from string) {
	if a := d.affinity[up.name]; a != "" && a != FlowAffinityAuto {
		return a, "configured"
	}
	return up.kindAffinity, up.kindFrom
}

// writeUplinks tells the stages which interfaces they may redirect frames
// out of - the attached uplinks - and which of them keep a flow on one CPU.
func (d *Datapath) writeUplinks() error {
	links := make([]bpf.Uplink, 0, len(d.uplinks))
	for _, up := range d.uplinks {
		a, _ := d.flowAffinity(up)
		links = append(links, bpf.Uplink{Ifindex: up.ifindex, FlowAffine: a == FlowAffinityOneCPU})
	}
	return d.node.SetUplinks(links)
}
