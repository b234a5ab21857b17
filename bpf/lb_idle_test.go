package bpf

import (
	"bytes"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

// SETTINGS_F_LB_IDLE says no service is configured, so vips is empty: a
// packet whose first probe (its own port) misses goes on to the next
// stages without the two probes after it. The test breaks that promise
// on purpose to see the flag read: with it, a TCP packet to a VIP address
// on a port without a service goes on unchanged (passed to the kernel
// here) instead of being dropped as DROP_NO_SERVICE; a packet that the
// first probe finds is balanced either way. SetSettings keeps the flag as
// SetLBIdle left it.
func TestLBIdle(t *testing.T) {
	testutil.RequirePrivileged(t)
	e := newLBEnv(t)
	programLB(t, e)
	noService := fromTor(tcp6(t, client6, 40321, 7777, ack, 64, 20))
	served := tcp6Flow(40321, 443, ack, 1)
	for _, step := range []struct {
		name    string
		set     func() error
		verdict uint32
		drops   map[DatapathDropReason]uint64
	}{
		{"idle", func() error { return e.node.SetLBIdle(true) }, xdpPass, nil},
		{"idle, settings rewritten", func() error { return e.node.SetSettings(e.settings) }, xdpPass, nil},
		{"active", func() error { return e.node.SetLBIdle(false) }, xdpDrop, dr{DatapathDropReasonDROP_NO_SERVICE: 1}},
		{"active, settings rewritten", func() error { return e.node.SetSettings(e.settings) }, xdpDrop, dr{DatapathDropReasonDROP_NO_SERVICE: 1}},
	} {
		t.Run(step.name, func(t *testing.T) {
			e.resetFlows(t)
			e.must(t, step.set())
			before := e.snap(t)
			verdict, out := e.run(t, noService, true)
			after := e.snap(t)
			if verdict != step.verdict || (verdict == xdpPass && !bytes.Equal(out, noService)) {
				t.Fatalf("no service: verdict %d (want %d), output %x", verdict, step.verdict, out)
			}
			checkDeltas(t, before, after, nil, step.drops)

			r := served(t, e)
			before = e.snap(t)
			verdict, out = e.run(t, r.in, true)
			after = e.snap(t)
			if verdict != xdpTx || !bytes.Equal(out, r.want) {
				t.Fatalf("a service's packet: verdict %d, output differs:\n got  %x\n want %x", verdict, out, r.want)
			}
			checkDeltas(t, before, after, newFlow, nil)
			checkTraffic(t, "vip", 1, before.vips, after.vips, len(r.in))
		})
	}
}
