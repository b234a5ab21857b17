package bpf

import (
	"bytes"
	"net"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

// backend_cpu holds, per CPU and backend, the next-hop cache and the
// backend's traffic counters in one entry (lb_maps.h): a flow's packets
// fill both on the CPU they ran on, the counters stay exact (every packet,
// every byte, summed with the VIP's alike), and the entry is cleared whole
// - next hop and counters - only when the id changes hands.
func TestBackendCPUEntry(t *testing.T) {
	testutil.RequirePrivileged(t)
	e := newLBEnv(t)
	programLB(t, e)
	e.resetFlows(t)
	cpu := firstCPU(t)
	r := tcp6Flow(40123, 443, ack, 1)(t, e)
	const n = 5
	for i := range n {
		verdict, out := e.run(t, r.in, true)
		if verdict != xdpTx || !bytes.Equal(out, r.want) {
			t.Fatalf("packet %d: verdict %d, output differs:\n got  %x\n want %x", i, verdict, out, r.want)
		}
	}
	want := DatapathCounter{Packets: n, Bytes: n * uint64(len(r.in))}
	if got := sumBackendCounter(t, e.objs.LB.BackendCPU, r.backend); got != want {
		t.Errorf("backend %d traffic = %+v, want %+v", r.backend, got, want)
	}
	if got := sumCounter(t, e.objs.LB.VipStats, 1); got != want {
		t.Errorf("vip 1 traffic = %+v, want %+v", got, want)
	}
	var per []DatapathBackendCpuState
	if err := e.objs.LB.BackendCPU.Lookup(r.backend, &per); err != nil {
		t.Fatal(err)
	}
	hop := per[cpu].Hop
	if hop.Expires == 0 || hop.Ifindex != uint32(e.ifindex) || !bytes.Equal(hop.Dmac[:], gwMAC) ||
		!bytes.Equal(hop.Smac[:], uplinkMAC) || per[cpu].Traffic != want {
		t.Errorf("CPU %d's entry of backend %d = %+v; want its next hop (%s -> %s, ifindex %d) and %+v", cpu, r.backend,
			per[cpu], net.HardwareAddr(uplinkMAC), net.HardwareAddr(gwMAC), e.ifindex, want)
	}

	// The id changes hands (SetBackend), or its counters are reset: the
	// whole entry is cleared on every CPU, and counting starts again.
	for _, clear := range []func() error{
		func() error { return e.lb.SetBackend(r.backend, e.backends[r.backend]) },
		func() error { return e.lb.ResetBackendStats(r.backend) },
	} {
		e.must(t, clear())
		if err := e.objs.LB.BackendCPU.Lookup(r.backend, &per); err != nil {
			t.Fatal(err)
		}
		for c, s := range per {
			if s != (DatapathBackendCpuState{}) {
				t.Errorf("CPU %d's entry of backend %d after the clear: %+v", c, r.backend, s)
			}
		}
		if verdict, out := e.run(t, r.in, true); verdict != xdpTx || !bytes.Equal(out, r.want) {
			t.Fatalf("after the clear: verdict %d, output differs:\n got  %x\n want %x", verdict, out, r.want)
		}
		one := DatapathCounter{Packets: 1, Bytes: uint64(len(r.in))}
		if got := sumBackendCounter(t, e.objs.LB.BackendCPU, r.backend); got != one {
			t.Errorf("backend %d traffic after the clear = %+v, want %+v", r.backend, got, one)
		}
	}
}
