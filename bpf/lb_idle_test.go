package bpf

import (
	"bytes"
	"testing"

	"github.com/aird-net/aird/internal/testutil"
)

// With SETTINGS_F_LB_IDLE (no service configured) the lb stage looks
// nothing up: a packet that would be balanced goes on unchanged to the
// next stages (passed to the kernel here) and counts no lb event; without
// it the same packet is balanced. SetSettings keeps the flag as
// SetLBIdle left it.
func TestLBIdle(t *testing.T) {
	testutil.RequirePrivileged(t)
	e := newLBEnv(t)
	programLB(t, e)
	r := tcp6Flow(40321, 443, ack, 1)(t, e)
	for _, step := range []struct {
		name    string
		set     func() error
		verdict uint32
	}{
		{"idle", func() error { return e.node.SetLBIdle(true) }, xdpPass},
		{"idle, settings rewritten", func() error { return e.node.SetSettings(e.settings) }, xdpPass},
		{"active", func() error { return e.node.SetLBIdle(false) }, xdpTx},
		{"active, settings rewritten", func() error { return e.node.SetSettings(e.settings) }, xdpTx},
	} {
		t.Run(step.name, func(t *testing.T) {
			e.resetFlows(t)
			e.must(t, step.set())
			before := e.snap(t)
			verdict, out := e.run(t, r.in, true)
			after := e.snap(t)
			want := r.want
			if step.verdict == xdpPass {
				want = r.in
			}
			if verdict != step.verdict || !bytes.Equal(out, want) {
				t.Fatalf("verdict %d (want %d), output differs:\n got  %x\n want %x", verdict, step.verdict, out, want)
			}
			if step.verdict == xdpPass {
				checkDeltas(t, before, after, nil, nil)
				if before.vips[1] != after.vips[1] {
					t.Errorf("vip 1 counted a packet the idle stage did not look at: %+v -> %+v", before.vips[1], after.vips[1])
				}
				return
			}
			checkDeltas(t, before, after, newFlow, nil)
			checkTraffic(t, "vip", 1, before.vips, after.vips, len(r.in))
		})
	}
}
