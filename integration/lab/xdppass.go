package lab

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// attachXDPPass attaches a program that passes every frame (XDP_PASS) to
// dev in ns, in native mode. A node's XDP_TX sends frames back into the
// veth it received them from, into its peer's ring; the veth driver wakes
// the peer to take them only when the peer has an XDP program of its own
// (veth_xdp_flush) - GRO alone gives it the ring but not the wake-up. So
// without this the ToR took a node's XDP_TX frames only when the node's
// kernel next sent a packet of its own on that link (aird's BFD, BGP,
// probes): 50-160 ms late while aird ran, until it ran again while it did
// not (a restart, a stall; docs/lab.md, "Restarts under load"). A real
// switch's NIC has no such ring. The attachment lives as long as the link.
func attachXDPPass(ns, dev string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "lab_pass",
		Type: ebpf.XDP,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
		License: "GPL",
	})
	if err != nil {
		return fmt.Errorf("load the XDP pass program: %w", err)
	}
	defer prog.Close() // the attachment keeps its own reference
	return inNetns(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", dev, ns, err)
		}
		if err := netlink.LinkSetXdpFdWithFlags(l, prog.FD(), unix.XDP_FLAGS_DRV_MODE); err != nil {
			return fmt.Errorf("attach XDP pass to %s in %s: %w", dev, ns, err)
		}
		return nil
	})
}
