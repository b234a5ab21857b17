package integration

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// TestBenchLBLive measures the load balancer live: 64-byte UDP frames from
// a generator to a VIP through an LB node to two backends, for aird (with
// 1, 1,000 and 10,000 VIPs configured through the real daemon), nftables
// DNAT (numgen over the two backends), an XDP floor (check the EtherType,
// rewrite the MAC addresses, redirect to the backends' link), the floor
// without the check (floor-blind), an encapsulating floor (plus a fixed
// IPv6-in-IPv6 header, as aird sends) and a floor as slow as aird
// (floor-slow), interleaved in the same run (bench/lb-live.sh;
// AIRD_BENCH=1). Every node's output bytes are checked before it is
// measured. With AIRD_BENCH_PROG_STATS=1 it also reports every XDP
// program's own time per run (the kernel's BPF statistics), with
// AIRD_BENCH_PERF=DIR the LB's CPU time split by perf call chains.
//
//	gen g<c> ── u [LB node <c>] o ══ eth0 [sink <c>: the backends' addresses]
//
// Every round runs every node, established then new flows, starting at
// the next node each round. Established flows: the same frame over and
// over (conntrack hits). New
// flows: every frame has a random source port and address (a conntrack
// insert each). The generator rewrites the whole frame before each send
// (live frames are recycled after the LB changed them in place). Each LB
// node's NAPI runs threaded on the first CPU, the generator on the second;
// the first CPU's time per packet delivered (schedstat of the NAPI
// threads) is the figure that survives noise, pps the one users know.
// Since every packet of the LB's uplink is processed on that one CPU, as
// on a NIC whose RSS keeps a flow on one queue, the aird nodes configure
// it flow-affinity = "one-cpu"; aird-1-anycpu (1 VIP) leaves it to the
// link kind, a veth's "any-cpu", and pays the cross-CPU conntrack steps.
// aird-1b is aird-1 again, a node configured identically: how far two
// identical nodes differ in a run is the noise the VIP-count nodes'
// differences are read against. Every aird node's line says where the
// generator's service sits in its maps (placement), every round's line
// the machine's load.
func TestBenchLBLive(t *testing.T) {
	if os.Getenv("AIRD_BENCH") == "" {
		t.Skip("benchmark: set AIRD_BENCH=1 (bench/lb-live.sh)")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs: one forwarding, one generating")
	}
	testutil.RequireCommand(t, "nft")
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("AIRD_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	progStats := progStatsOn(t)
	gen := testutil.NewNetns(t, "airdG-")
	cpu0, cpu1 := firstTwoCPUs(t)
	var chains []*lbChain
	for i, name := range []string{"floor", "floor-encap", "nft", "aird-1", "aird-1k", "aird-10k", "aird-1b", "aird-1-anycpu", "floor-slow", "floor-blind"} {
		if chainWanted(name) {
			chains = append(chains, newLBChain(t, gen, name, i+1, cpu0))
		}
	}
	for _, c := range chains {
		c.checkOutput(t, false, cpu1)
		c.checkOutput(t, true, cpu1)
	}
	perfDir := os.Getenv("AIRD_BENCH_PERF")
	const burst = 2_000_000
	fmt.Printf("BENCH lb live: %d frames of 64 bytes (IPv6 UDP) offered per window as fast as the generator goes; the LB's NAPI thread on CPU %d, the generator on CPU %d\n", burst, cpu0, cpu1)
	type key struct {
		chain string
		newf  bool
	}
	if progStats {
		fmt.Printf("BENCH BPF program statistics on (AIRD_BENCH_PROG_STATS): every program run pays two clock reads more; compare these ns/pkt only with each other\n")
	}
	ws := map[key][]window{}
	progs := map[key][]progWindow{}
	splits := map[key][]perfSplit{}
	// Round 0 warms up (the conntrack's memory is faulted in by the
	// first new flows) and is not counted.
	for r := range rounds + 1 {
		var line []string
		// Each round starts at the next node: under a load that drifts
		// within a run, no node always runs first or right after another.
		order := append(slices.Clone(chains[r%len(chains):]), chains[:r%len(chains)]...)
		for _, newf := range []bool{false, true} {
			for _, c := range order {
				before := c.sampleProgs(t, newf)
				var stop func() perfSplit
				if perfDir != "" {
					stop = perfRecord(t, perfDir, c.name+"-"+flowKind(newf), cpu0)
				}
				w := runWindow(t, c.gen[newf], c.count, burst, cpu1)
				if stop != nil && r > 0 {
					splits[key{c.name, newf}] = append(splits[key{c.name, newf}], stop())
				} else if stop != nil {
					stop()
				}
				line = append(line, fmt.Sprintf("%s/%s %.0f ns", c.name, flowKind(newf), w.nsPerPkt))
				if r == 0 {
					continue
				}
				ws[key{c.name, newf}] = append(ws[key{c.name, newf}], w)
				progs[key{c.name, newf}] = append(progs[key{c.name, newf}], progWindowOf(before, c.sampleProgs(t, newf), w, cpu0))
			}
		}
		what := fmt.Sprintf("round %d", r)
		if r == 0 {
			what = "warm-up (not counted)"
		}
		fmt.Printf("BENCH   %s (load %s): %s\n", what, loadAverage(), strings.Join(line, ", "))
	}
	for _, newf := range []bool{false, true} {
		m := map[string]window{}
		for _, c := range chains {
			m[c.name] = medianWindow(ws[key{c.name, newf}])
		}
		fmt.Printf("BENCH %s flows (median of %d):\n", flowKind(newf), rounds)
		for _, c := range chains {
			w := m[c.name]
			prog := ""
			if progStats {
				prog = "  " + medianProgWindow(progs[key{c.name, newf}]).String(w.nsPerPkt)
			}
			fmt.Printf("BENCH   %-13s %6.0f kpps %6.0f ns/pkt  %5.2fx nft's ns/pkt  %5.2fx the floor's%s\n",
				c.name, w.pps/1e3, w.nsPerPkt, ratio(m["nft"].nsPerPkt, w.nsPerPkt), ratio(w.nsPerPkt, m["floor"].nsPerPkt), prog)
			if ss := splits[key{c.name, newf}]; len(ss) > 0 {
				m, n := sumSplit(ss)
				fmt.Printf("BENCH     %s: %s (%.0f samples)\n", c.name, m.String(w.nsPerPkt), n)
			}
		}
		if line := pairedRatios(chains, "aird-1", func(name string) []window { return ws[key{name, newf}] }); line != "" {
			fmt.Printf("BENCH   %s\n", line)
		}
	}
	for _, c := range chains {
		if n := c.count(); n == 0 {
			t.Errorf("%s delivered nothing", c.name)
		}
		if c.lb == nil {
			continue
		}
		// What aird's data plane did with the frames (non-zero counters).
		out, _, _ := c.lb.airctl("lb", "stats")
		var nz []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 3 && (f[0] == "event" || f[0] == "drop") && f[2] != "0" {
				nz = append(nz, f[0]+" "+f[1]+" "+f[2])
			}
		}
		fmt.Printf("BENCH %s counters: %s\n", c.name, strings.Join(nz, ", "))
	}
}

func flowKind(newf bool) string {
	if newf {
		return "new"
	}
	return "established"
}

// lbChain is one LB node between the generator and a sink.
type lbChain struct {
	lb   *node         // aird chains
	prog *ebpf.Program // the LB's XDP program on u (floor, aird)
	// The sink's counting XDP program and its per-CPU counts.
	sinkProg   *ebpf.Program
	sinkCounts *ebpf.Map
	want       outputWant // what the LB node sends for the generator's frame
	name       string
	sink       string
	gen        map[bool]*generator // by new flows
	count      func() uint64       // frames the sink received
}

const lbBenchVIP = "fd00:300::1"

// newLBChain builds gen g<i> ── u [LB] o ══ eth0 [sink], the sink holding
// both backend addresses (fd00:b<i>::1, ::2, neighbours of the LB), and
// configures the LB node as name says.
func newLBChain(t *testing.T, gen, name string, i int, cpu int) *lbChain {
	t.Helper()
	c := &lbChain{name: name, sink: testutil.NewNetns(t, "airdS-")}
	var lb *node
	var lbNS string
	if strings.HasPrefix(name, "aird") {
		lb = newAirdIn(t, testutil.NewNetns(t, "airdL-"))
		lbNS = lb.ns
	} else {
		lbNS = testutil.NewNetns(t, "airdL-")
	}
	gdev := fmt.Sprintf("g%d", i)
	testutil.Run(t, "ip", "link", "add", gdev, "netns", gen, "type", "veth", "peer", "name", "u", "netns", lbNS)
	testutil.Run(t, "ip", "link", "add", "o", "netns", lbNS, "type", "veth", "peer", "name", "eth0", "netns", c.sink)
	lbAddr := fmt.Sprintf("fd00:100:%d::1", i)
	be1, be2 := fmt.Sprintf("fd00:b%d::1", i), fmt.Sprintf("fd00:b%d::2", i)
	for _, l := range []struct{ ns, dev, addr string }{
		{gen, gdev, fmt.Sprintf("fd00:100:%d::2/64", i)}, {lbNS, "u", lbAddr + "/64"},
		{lbNS, "o", fmt.Sprintf("fd00:b%d::ff/64", i)}, {c.sink, "eth0", be1 + "/64"},
	} {
		testutil.Addr(t, l.ns, l.dev, l.addr)
		testutil.Run(t, "ip", "-n", l.ns, "link", "set", l.dev, "up")
	}
	testutil.Addr(t, c.sink, "eth0", be2+"/64")
	// The sink counts and drops in XDP: its cost, which the LB node's CPU
	// pays when it hands the sink a frame, stays small and the same for
	// every chain (and XDP gives the veth the NAPI that frames redirected
	// into it need).
	drop, counts := countingDrop(t)
	attachXDP(t, c.sink, "eth0", drop)
	c.sinkProg, c.sinkCounts = drop, counts
	c.count = func() uint64 {
		var per []uint64
		if err := counts.Lookup(uint32(0), &per); err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, v := range per {
			n += v
		}
		return n
	}
	sinkMAC, outMAC := linkMAC(t, c.sink, "eth0"), linkMAC(t, lbNS, "o")
	for _, b := range []string{be1, be2} {
		testutil.Run(t, "ip", "-n", lbNS, "-6", "neigh", "replace", b, "lladdr", sinkMAC.String(), "dev", "o", "nud", "permanent")
	}
	testutil.NetnsExec(t, lbNS, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	testutil.WaitIPv6Ready(t, gen, lbNS, c.sink)
	backends := []netip.Addr{netip.MustParseAddr(be1), netip.MustParseAddr(be2)}
	c.want = outputWant{dstMAC: sinkMAC, srcMAC: outMAC, encap: name == "floor-encap" || strings.HasPrefix(name, "aird"),
		backends: backends, dnat: name == "nft", decHop: !strings.HasPrefix(name, "floor")}
	if name == "floor-encap" {
		c.want.outerSrc, c.want.backends = netip.MustParseAddr(lbAddr), backends[:1]
	}
	switch {
	case name == "floor" || name == "floor-blind":
		attachXDP(t, lbNS, "u", floorRedirect(t, lbNS, sinkMAC, outMAC, 0, name == "floor-blind"))
	case name == "floor-slow":
		attachXDP(t, lbNS, "u", floorRedirect(t, lbNS, sinkMAC, outMAC, slowFloorSpins, false))
	case name == "floor-encap":
		attachXDP(t, lbNS, "u", floorEncap(t, lbNS, sinkMAC, outMAC, netip.MustParseAddr(lbAddr), netip.MustParseAddr(be1)))
	case name == "nft":
		// Kernel forwarding: GRO makes the uplink take frames XDP_TX'd
		// into it; conntrack's checksum check is off because the new-flow
		// frames carry random ports under a fixed checksum.
		testutil.NetnsExec(t, lbNS, "ethtool", "-K", "u", "gro", "on")
		testutil.NetnsExec(t, lbNS, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_checksum=0")
		rules := filepath.Join(t.TempDir(), "lb.nft")
		if err := os.WriteFile(rules, []byte(fmt.Sprintf(`table ip6 aird_bench {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip6 daddr %s udp dport 9 dnat to numgen inc mod 2 map { 0 : %s, 1 : %s }
	}
}
`, lbBenchVIP, be1, be2)), 0o644); err != nil {
			t.Fatal(err)
		}
		testutil.NetnsExec(t, lbNS, "nft", "-f", rules)
	default:
		vips := map[string]int{"aird-1": 1, "aird-1b": 1, "aird-1k": 1000, "aird-10k": 10000, "aird-1-anycpu": 1}[name]
		c.lb = lb
		lb.writeConfig(lbBenchConfig(lb, lbAddr, vips, be1, be2, name != "aird-1-anycpu"))
		began := time.Now()
		lb.launch("nsenter", "--net=/run/netns/"+lb.ns, lb.aird, "--config", lb.cfgPath)
		lb.notify.waitFor(t, "READY=1", 5*time.Minute)
		ready := time.Since(began).Round(time.Millisecond)
		// The daemon put every configured service into the maps: one
		// Maglev table per VIP.
		tables, entries := len(mapEntries(t, lb.pinPath, bpf.DatapathMapMaglevV2)), len(mapEntries(t, lb.pinPath, bpf.DatapathMapVips))
		if tables != vips {
			t.Fatalf("%s: %d Maglev tables in the maps for %d configured services", name, tables, vips)
		}
		fmt.Printf("BENCH %s: aird ready %s after start; %d Maglev tables and %d vips entries in its maps\n", name, ready, tables, entries)
		fmt.Printf("BENCH %s: the generator's service: %s\n", name, servicePlacement(t, lb.pinPath, netip.MustParseAddr(lbBenchVIP), 9))
	}
	threadNAPI(t, lbNS, "u", cpu)
	c.prog = xdpProgOf(t, lbNS, "u")
	dstMAC := linkMAC(t, lbNS, "u")
	c.gen = map[bool]*generator{
		false: newFrameGenerator(t, gen, gdev, dstMAC, netip.MustParseAddr(lbBenchVIP), false),
		true:  newFrameGenerator(t, gen, gdev, dstMAC, netip.MustParseAddr(lbBenchVIP), true),
	}
	return c
}

// lbBenchConfig is an LB node with vips UDP services on port 9 (the first
// one the generator's), each over the two backends, without health checks;
// oneCPU configures its uplink "u" flow-affinity = "one-cpu".
func lbBenchConfig(n *node, underlay string, vips int, be1, be2 string, oneCPU bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[node]
name = "lb"
router-id = "10.255.0.1"
underlay = [%q]
uplinks = ["u", "o"]
[datapath]
pin-path = %q
[api]
socket = %q
[[ipam.pools]]
name = "services"
kind = "service"
prefixes = ["fd00:300::/112"]
`, underlay, n.pinPath, n.socket)
	if oneCPU {
		b.WriteString("[[datapath.uplink]]\nname = \"u\"\nflow-affinity = \"one-cpu\"\n")
	}
	for v := 1; v <= vips; v++ {
		fmt.Fprintf(&b, "[[services]]\nname = \"s%d\"\nvip = \"fd00:300::%x\"\nport = 9\nprotocol = \"udp\"\nbackends = [{ address = %q }, { address = %q }]\nhealth-check = { type = \"none\" }\n",
			v, v, be1, be2)
	}
	return b.String()
}

// attachXDP attaches prog to dev in ns (the namespace's deletion at the
// end of the test detaches it).
func attachXDP(t *testing.T, ns, dev string, prog *ebpf.Program) {
	t.Helper()
	testutil.InNetns(t, ns, func() {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetXdpFdWithFlags(l, prog.FD(), 1<<2 /* XDP_FLAGS_DRV_MODE */); err != nil {
			t.Fatalf("attach XDP to %s: %v", dev, err)
		}
	})
}

// countingDrop is an XDP program that counts every frame (a per-CPU
// counter) and drops it; the returned map holds the count.
func countingDrop(t *testing.T) (*ebpf.Program, *ebpf.Map) {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"), // XDP_DROP
		asm.Return(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog, m
}

// storeBytes returns stores of b at off(dst) in 4-byte words (and a
// 2-byte tail), as the machine's byte order reads them.
func storeBytes(dst asm.Register, off int16, b []byte) asm.Instructions {
	var ins asm.Instructions
	for len(b) >= 4 {
		ins = append(ins, asm.StoreImm(dst, off, int64(int32(binary.NativeEndian.Uint32(b))), asm.Word))
		b, off = b[4:], off+4
	}
	if len(b) >= 2 {
		ins = append(ins, asm.StoreImm(dst, off, int64(int16(binary.NativeEndian.Uint16(b))), asm.Half))
		b, off = b[2:], off+2
	}
	if len(b) == 1 {
		ins = append(ins, asm.StoreImm(dst, off, int64(int8(b[0])), asm.Byte))
	}
	return ins
}

// floorRedirect is the floor forwarder: it writes the next hop's and its
// own MAC address into the frame and redirects it out of the LB's "o".
// With spins > 0 it first counts down from spins in registers: a floor as
// slow as aird's program that touches no memory (floor-slow), which tells
// what being slower costs in this harness from what aird's memory
// accesses cost.
// With blind it never reads the frame (floor-blind, the floor of earlier
// runs).
func floorRedirect(t *testing.T, ns string, dstMAC, srcMAC net.HardwareAddr, spins int32, blind bool) *ebpf.Program {
	t.Helper()
	return floorProgram(t, ns, 0, append(append([]byte{}, dstMAC...), srcMAC...), spins, blind)
}

// slowFloorSpins makes floor-slow's program, its read of the frame
// included, take about as long as aird's on an established flow (150-180
// ns per run on the development VM; the BPF statistics,
// AIRD_BENCH_PROG_STATS, show both).
const slowFloorSpins = 240

// floorEncap is the floor of an encapsulating forwarder: it makes room
// for an outer IPv6 header (bpf_xdp_adjust_head), writes a fixed Ethernet
// and IPv6-in-IPv6 header from src to dst (the payload length of the
// benchmark's 64-byte frames) and redirects the frame out of the LB's
// "o" - what aird does to an established flow's frame, without any lookup.
func floorEncap(t *testing.T, ns string, dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr) *ebpf.Program {
	t.Helper()
	const outer, frame = 40, 64
	hdr := append(append([]byte{}, dstMAC...), srcMAC...)
	hdr = append(hdr, 0x86, 0xdd)                         // IPv6
	hdr = append(hdr, 0x60, 0, 0, 0, 0, frame-14, 41, 64) // version, length, IPv6-in-IPv6, hop limit
	hdr = append(append(hdr, src.AsSlice()...), dst.AsSlice()...)
	return floorProgram(t, ns, outer, hdr, 0, false)
}

// floorProgram is an XDP program that checks that the frame is IPv6
// (unless blind), counts down spins, moves the frame's start back by push
// bytes (bpf_xdp_adjust_head) when push > 0, writes hdr at the start and
// redirects the frame out of the LB's "o" in ns.
func floorProgram(t *testing.T, ns string, push int, hdr []byte, spins int32, blind bool) *ebpf.Program {
	t.Helper()
	var out int
	testutil.InNetns(t, ns, func() {
		l, err := netlink.LinkByName("o")
		if err != nil {
			t.Fatal(err)
		}
		out = l.Attrs().Index
	})
	ins := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)} // ctx
	if !blind {
		// Look at the frame first, as any forwarder does (aird's and the
		// kernel's read every header): an IPv6 frame or a drop. The
		// generator wrote it on the other CPU, so this read is where the
		// LB's CPU waits for it.
		ins = append(ins,
			asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
			asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 14),
			asm.JGT.Reg(asm.R4, asm.R3, "drop"),
			asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
			asm.JNE.Imm(asm.R5, int32(binary.NativeEndian.Uint16([]byte{0x86, 0xdd})), "drop"),
		)
	}
	if spins > 0 {
		ins = append(ins,
			asm.Mov.Imm(asm.R9, spins),
			asm.Sub.Imm(asm.R9, 1).WithSymbol("spin"),
			asm.JNE.Imm(asm.R9, 0, "spin"),
		)
	}
	if push > 0 {
		ins = append(ins,
			asm.Mov.Imm(asm.R2, int32(-push)),
			asm.FnXdpAdjustHead.Call(),
			asm.JNE.Imm(asm.R0, 0, "drop"),
		)
	}
	ins = append(ins,
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, int32(max(len(hdr), 14))),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
	)
	ins = append(ins, storeBytes(asm.R2, 0, hdr)...)
	ins = append(ins,
		asm.Mov.Imm(asm.R1, int32(out)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"), // XDP_DROP
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: ins})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// newFrameGenerator is newGenerator's generator with a program that writes
// the whole 64-byte UDP frame before each XDP_TX (a recycled live frame
// holds what the LB made of it), with a random source port and address
// low word when newFlows.
func newFrameGenerator(t *testing.T, ns, dev string, dstMAC net.HardwareAddr, dst netip.Addr, newFlows bool) *generator {
	t.Helper()
	g := newGenerator(t, ns, dev, dstMAC, dst)
	frame := g.frame
	ins := asm.Instructions{
		asm.LoadMem(asm.R7, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R7),
		asm.Add.Imm(asm.R4, int32(len(frame))),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
	}
	ins = append(ins, storeBytes(asm.R7, 0, frame)...)
	if newFlows {
		const srcLow, sport = 14 + 8 + 12, 14 + 40 // IPv6 source's last word, UDP source port
		ins = append(ins,
			asm.FnGetPrandomU32.Call(),
			asm.StoreMem(asm.R7, srcLow, asm.R0, asm.Word),
			asm.StoreMem(asm.R7, sport, asm.R0, asm.Half),
		)
	}
	ins = append(ins,
		asm.Mov.Imm(asm.R0, 3), // XDP_TX
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: ins})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	g.prog.Close()
	g.prog = prog
	return g
}
