package datapath

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/bpf"
)

// TestLinkFlowAffinity: a hardware device and a bond keep a flow on one
// CPU; every software link kind, and kinds not known here, may not.
func TestLinkFlowAffinity(t *testing.T) {
	for _, c := range []struct {
		link netlink.Link
		want string
	}{
		{&netlink.Device{}, FlowAffinityOneCPU},
		{&netlink.Bond{}, FlowAffinityOneCPU},
		{&netlink.Veth{}, FlowAffinityAnyCPU},
		{&netlink.Tuntap{}, FlowAffinityAnyCPU},
		{&netlink.Macvlan{}, FlowAffinityAnyCPU},
		{&netlink.Vxlan{}, FlowAffinityAnyCPU},
		{&netlink.GenericLink{LinkType: "somethingnew"}, FlowAffinityAnyCPU},
	} {
		got, from := linkFlowAffinity(c.link)
		if got != c.want || from == "" {
			t.Errorf("%s: flow affinity %q (%s), want %q", c.link.Type(), got, from, c.want)
		}
	}
}

// TestFlowAffinity: an uplink's flag in the uplinks map follows its link
// kind (a veth: any CPU, flag clear) unless configured, and a bad value
// changes nothing.
func TestFlowAffinity(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, ModeAuto)
	// A start sets the affinity before it attaches: an entry the map
	// already holds (adopted from the previous process) stays until then.
	const adopted = 4242
	if err := d.objs.Pipeline.Uplinks.Put(uint32(adopted), uint32(0)); err != nil {
		t.Fatal(err)
	}
	if err := d.SetFlowAffinity(map[string]string{e.devA: FlowAffinityOneCPU}); err != nil {
		t.Fatalf("SetFlowAffinity before SetUplinks: %v", err)
	}
	var flags uint32
	if err := d.objs.Pipeline.Uplinks.Lookup(uint32(adopted), &flags); err != nil {
		t.Fatalf("SetFlowAffinity before any uplink emptied the uplinks map: %v", err)
	}
	if err := d.SetFlowAffinity(nil); err != nil {
		t.Fatal(err)
	}
	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	check := func(step, affinity, from string) {
		t.Helper()
		ups := d.Uplinks()
		if len(ups) != 1 || ups[0].FlowAffinity != affinity || ups[0].FlowAffinityFrom != from {
			t.Fatalf("%s: Uplinks() = %+v, want flow affinity %q from %q", step, ups, affinity, from)
		}
		var flags uint32
		if err := d.objs.Pipeline.Uplinks.Lookup(uint32(ups[0].Ifindex), &flags); err != nil {
			t.Fatalf("%s: uplinks map: %v", step, err)
		}
		affine := flags&uint32(bpf.DatapathUplinkFlagsUPLINK_F_FLOW_AFFINE) != 0
		if affine != (affinity == FlowAffinityOneCPU) {
			t.Fatalf("%s: uplinks map flags %#x for flow affinity %q", step, flags, affinity)
		}
		// The only uplink: settings say whether every uplink is one-cpu.
		var v bpf.DatapathPipelineSettings
		if err := d.objs.Pipeline.Settings.Lookup(uint32(0), &v); err != nil {
			t.Fatalf("%s: settings: %v", step, err)
		}
		all := v.Flags&uint32(bpf.DatapathSettingsFlagsSETTINGS_F_UPLINKS_AFFINE) != 0
		if all != affine {
			t.Fatalf("%s: settings flags %#x with the only uplink's flags %#x", step, v.Flags, flags)
		}
	}
	check("veth", FlowAffinityAnyCPU, "link kind: veth")
	if err := d.SetFlowAffinity(map[string]string{e.devA: FlowAffinityOneCPU}); err != nil {
		t.Fatalf("SetFlowAffinity: %v", err)
	}
	check("configured one-cpu", FlowAffinityOneCPU, "configured")
	// Settings written later (a reload) keep the uplinks' flag.
	if err := d.SetSettings(bpf.Settings{HashSeed: 7}); err != nil {
		t.Fatalf("SetSettings: %v", err)
	}
	check("settings rewritten", FlowAffinityOneCPU, "configured")
	if err := d.SetFlowAffinity(map[string]string{e.devA: "rss"}); err == nil {
		t.Fatal("SetFlowAffinity accepted \"rss\"")
	}
	check("after a bad value", FlowAffinityOneCPU, "configured")
	// Re-attaching (a reload listing the uplinks again) keeps it.
	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	check("after SetUplinks", FlowAffinityOneCPU, "configured")
	if err := d.SetFlowAffinity(map[string]string{e.devA: FlowAffinityAuto}); err != nil {
		t.Fatalf("SetFlowAffinity: %v", err)
	}
	check("auto", FlowAffinityAnyCPU, "link kind: veth")
}
