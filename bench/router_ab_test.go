package bench

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// abObjects returns the objects AIRD_BENCH_AB names; none skips b.
func abObjects(b *testing.B) []string {
	objects := abList()
	if len(objects) == 0 {
		b.Skipf("SKIP: %s names no object to compare with", envAB)
	}
	return objects
}

// abList returns the objects AIRD_BENCH_AB names.
func abList() []string {
	var objects []string
	for _, p := range strings.Split(os.Getenv(envAB), ",") {
		if p = strings.TrimSpace(p); p != "" {
			objects = append(objects, p)
		}
	}
	return objects
}

// BenchmarkRouterAB: BenchmarkRouterToEndpoint's packet (a 74-byte IPv6
// TCP packet from the uplink to a local endpoint: parse, count, decap and
// lb stages pass, the router delivers it) in the steady state, for this
// tree's datapath, this tree's datapath again with its lb stage idle
// (this-idle: no service configured, SETTINGS_F_LB_IDLE) and every object
// of AIRD_BENCH_AB, each loaded and given the same uplink and endpoint,
// run round by round alternately in one process (without AIRD_BENCH_AB,
// this tree's two). restore_xdp (plain) runs in front of each and puts the frame's
// Ethernet header and hop limit back between repetitions; its own cost
// (null_xdp behind it) is measured in the same rounds and subtracted. The
// last output of every round must be the delivered frame. Reported per
// object (its file name): ns/pkt and x-this (its ns over this tree's),
// trimmed means.
func BenchmarkRouterAB(b *testing.B) {
	objects := abList()
	e := newRouterEnv(b)
	client := netip.MustParseAddr("2001:db8:c0::5")
	in := tcp74(b, e.uplinkMAC, gwMAC, client, podAddr, 64)
	want := tcp74(b, e.epMAC, e.epHostMAC, client, podAddr, 63)
	own, err := bpf.LoadSpecWith(bpf.Config{ConntrackSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"this", "this-idle"}
	progs := []*ebpf.Program{e.objs.Programs.XDP, e.loadOther(b, own, true)}
	for _, o := range objects {
		spec, err := ebpf.LoadCollectionSpec(o)
		if err != nil {
			b.Fatalf("datapath spec %s: %v", o, err)
		}
		olderBackendMaps(spec)
		if err := bpf.Configure(spec, bpf.Config{ConntrackSize: 4096}); err != nil {
			b.Fatalf("datapath spec %s: %v", o, err)
		}
		names = append(names, filepath.Base(o))
		progs = append(progs, e.loadOther(b, spec, false))
	}
	harness := make([]*ebpf.Program, len(progs))
	for k, p := range progs {
		harness[k] = plainHarness(b, p, in)
	}
	hNull := plainHarness(b, e.floor.NullXdp, in)
	r := map[string]samples{}
	out := make([]byte, len(in)+256)
	inNetns(b, e.ns, func() {
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r["null"] = append(r["null"], float64(runRepeat(b, hNull, in, nil, e.uplink, steadyRepeat)))
			for k, h := range harness {
				verdict, d, got := testRunN(b, h, bytes.Clone(in), out, e.uplink, steadyRepeat)
				if verdict != xdpRedirect || !bytes.Equal(got, want) {
					b.Fatalf("%s: verdict %d, output\n got  %x\n want %x", names[k], verdict, got, want)
				}
				r[names[k]] = append(r[names[k]], float64(d))
			}
		}
	})
	reportAB(b, r, names)
}

// loadOther loads a configured datapath spec beside e's, with the same
// uplink and endpoint (and the lb stage idle when idle), and returns its
// aird_xdp.
func (e *routerEnv) loadOther(b *testing.B, spec *ebpf.CollectionSpec, idle bool) *ebpf.Program {
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		b.Fatalf("load datapath: %v", err)
	}
	b.Cleanup(coll.Close)
	node := bpf.NewNode(lenientView(b, coll, bpf.ViewPipeline, true))
	must(b, node.SetUplinks([]bpf.Uplink{{Ifindex: e.uplink}}))
	if idle {
		must(b, node.SetLBIdle(true))
	}
	must(b, bpf.NewRouter(lenientView(b, coll, bpf.ViewRouter, true)).SetEndpoint(e.endpoint(), nil))
	return coll.Programs[bpf.ProgramXDP]
}

// plainHarness loads restore_xdp in front of target for a program that
// forwards pkt without encapsulating it: every repetition starts from
// pkt's Ethernet header and hop limit.
func plainHarness(b *testing.B, target *ebpf.Program, pkt []byte) *ebpf.Program {
	return newHarness(b, target, pkt, func(c *FloorRestoreConf) { c.Plain = uint32(pkt[14+7]) }) // the IPv6 hop limit
}
