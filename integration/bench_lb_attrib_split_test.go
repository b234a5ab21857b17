package integration

import (
	"os"
	"testing"
)

// TestSplitNAPISamples classifies perf script samples of the live
// benchmark's LB thread: its own poll, its program, the redirect, the
// sink's poll run as softirq on the same thread, and other threads left out.
func TestSplitNAPISamples(t *testing.T) {
	const script = `napi/u-23347 13621 
	ffffffff81e0045b veth_xdp_rcv
	ffffffff81e00840 veth_poll
	ffffffff81eb0371 __napi_poll
	ffffffff81eb0613 napi_threaded_poll_loop

napi/u-23347 13621 
	ffffffffc002eb3d bpf_prog_001fc3580098431e_aird_xdp
	ffffffff81e00215 veth_xdp_rcv_one
	ffffffff81eb0613 napi_threaded_poll_loop

napi/u-23347 13621 
	ffffffff81000001 htab_map_hash
	ffffffffc002eb3d bpf_prog_001fc3580098431e_aird_xdp
	ffffffff81e00215 veth_xdp_rcv_one

napi/u-23347 13621 
	ffffffff81000002 veth_xdp_xmit
	ffffffff81000003 bq_xmit_all
	ffffffff81000004 xdp_do_flush
	ffffffff81eb0613 napi_threaded_poll_loop

napi/u-23347 13621 
	ffffffff8225139a native_queued_spin_lock_slowpath
	ffffffff82250fcb _raw_spin_lock
	ffffffff81efdbd4 page_pool_put_unrefed_netmem
	ffffffff81e001d6 veth_xdp_rcv_one
	ffffffff81eb094e net_rx_action
	ffffffff81eb0655 napi_threaded_poll_loop

napi/u-23347 13621 
	ffffffffc00272ce bpf_prog_a0505817bd01e14e
	ffffffff81e00215 veth_xdp_rcv_one
	ffffffff81eb094e net_rx_action

napi/u-23347 13621 
	ffffffff81e0045b veth_xdp_rcv
	ffffffff81eb094e net_rx_action

napi/u-23347 13621 
	ffffffff81000005 pvclock_clocksource_read_nowd
	ffffffff81e00215 veth_xdp_rcv_one

sh  3262 
	ffffffff81e0045b veth_xdp_rcv
`
	got := splitNAPISamples(script)
	want := perfSplit{partRx: 1, partProgram: 2, partXmit: 1, partClock: 1, partSinkRx: 1, partSinkProgram: 1, partSinkReturn: 1}
	if got != want {
		t.Fatalf("split = %v, want %v", got, want)
	}
	if f := os.Getenv("AIRD_PERF_SCRIPT"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := splitNAPISamples(string(b))
		m, n := sumSplit([]perfSplit{s})
		t.Logf("%s: %v; %s (%.0f samples)", f, s, m.String(1000), n)
	}
}
