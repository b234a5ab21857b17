package integration

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

// TestBenchRouterLive measures packets per second from an outside
// generator to a container through a node: aird's XDP router against the
// kernel's own forwarding of the same traffic, in the same run
// (bench/router-live.sh; AIRD_BENCH=1).
//
//	gen gx ── uplink0 [node X: aird, XDP router] airXXX ══ eth0 [cx: sink]
//	gen gk ── uplink0 [node K: kernel forwarding] hk     ══ eth0 [ck: sink]
//
// The generator sends one 64-byte UDP frame (IPv6) over and over with
// BPF_PROG_TEST_RUN live frames (an XDP program returning XDP_TX on gx or
// gk); the containers' eth0 count what arrives (rx_packets), and their
// stacks drop it (no listener) the same way in both. Every NAPI instance of the nodes
// and sinks runs threaded, pinned to the first CPU, the generator on the
// second: the first CPU's time per packet forwarded (the NAPI threads'
// schedstat) is the figure that survives noise, pps the one users know.
func TestBenchRouterLive(t *testing.T) {
	if os.Getenv("AIRD_BENCH") == "" {
		t.Skip("benchmark: set AIRD_BENCH=1 (bench/router-live.sh)")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs: one forwarding, one generating")
	}
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("AIRD_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	gen := testutil.NewNetns(t, "airdG-")
	x := newAirdIn(t, testutil.NewNetns(t, "airdX-"))
	k := testutil.NewNetns(t, "airdK-")
	cx, ck := testutil.NewNetns(t, "airdXc-"), testutil.NewNetns(t, "airdKc-")
	testutil.Run(t, "ip", "link", "add", "gx", "netns", gen, "type", "veth", "peer", "name", "uplink0", "netns", x.ns)
	testutil.Run(t, "ip", "link", "add", "gk", "netns", gen, "type", "veth", "peer", "name", "uplink0", "netns", k)
	for _, l := range []struct{ ns, dev, addr string }{
		{gen, "gx", "fd00:100:1::2/64"}, {x.ns, "uplink0", "fd00:100:1::1/64"},
		{gen, "gk", "fd00:100:2::2/64"}, {k, "uplink0", "fd00:100:2::1/64"},
	} {
		testutil.Addr(t, l.ns, l.dev, l.addr)
		testutil.Run(t, "ip", "-n", l.ns, "link", "set", l.dev, "up")
	}
	// Node K: a container routed by the kernel alone.
	testutil.Run(t, "ip", "link", "add", "hk", "netns", k, "type", "veth", "peer", "name", "eth0", "netns", ck)
	testutil.Run(t, "ip", "-n", k, "link", "set", "hk", "up")
	testutil.Run(t, "ip", "-n", ck, "link", "set", "eth0", "up")
	testutil.Addr(t, ck, "eth0", "fd00:200:9::1/128")
	ckMAC := linkMAC(t, ck, "eth0")
	testutil.Run(t, "ip", "-n", k, "-6", "route", "add", "fd00:200:9::1/128", "dev", "hk")
	testutil.Run(t, "ip", "-n", k, "-6", "neigh", "replace", "fd00:200:9::1", "lladdr", ckMAC.String(), "dev", "hk", "nud", "permanent")
	testutil.NetnsExec(t, k, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	// Node X: aird, and the container as its endpoint.
	x.writeConfig(fmt.Sprintf(`[node]
name = "x"
router-id = "10.255.0.1"
underlay = ["fd00:100:1::1"]
uplinks = ["uplink0"]
[datapath]
pin-path = %q
[api]
socket = %q
[ipam]
pod-prefixes = ["fd00:200:1::/64"]
[[ipam.pools]]
name = "pods"
kind = "pod"
prefixes = ["fd00:200::/40"]
`, x.pinPath, x.socket))
	testutil.WaitIPv6Ready(t, gen, x.ns, k)
	x.start()
	out, errs, code := x.airctl("endpoint", "add", "sink", "--netns", "/run/netns/"+cx, "-o", "json")
	if code != 0 {
		t.Fatalf("endpoint add: %s%s", out, errs)
	}
	podX := x.endpoint("sink").Addresses[0]
	// Both nodes' uplinks receive frames XDP_TX'd into the veth: NAPI
	// (aird's XDP on X's; GRO, a NIC's default, on K's).
	testutil.NetnsExec(t, k, "ethtool", "-K", "uplink0", "gro", "on")
	countX, countK := sinkOf(cx), sinkOf(ck)

	cpu0, cpu1 := firstTwoCPUs(t)
	for _, ns := range []string{x.ns, k} {
		threadNAPI(t, ns, "uplink0", cpu0)
	}
	genX := newGenerator(t, gen, "gx", linkMAC(t, x.ns, "uplink0"), podX)
	genK := newGenerator(t, gen, "gk", linkMAC(t, k, "uplink0"), netip.MustParseAddr("fd00:200:9::1"))
	const burst = 3_000_000
	fmt.Printf("BENCH router live: %d frames of 64 bytes offered per window as fast as the generator goes; the node's NAPI thread on CPU %d, the generator on CPU %d\n", burst, cpu0, cpu1)
	var xs, ks []window
	for r := range rounds {
		xs = append(xs, runWindow(t, genX, countX.counter(t), burst, cpu1))
		ks = append(ks, runWindow(t, genK, countK.counter(t), burst, cpu1))
		fmt.Printf("BENCH   round %d: xdp router %s | kernel %s\n", r+1, xs[r], ks[r])
	}
	mx, mk := medianWindow(xs), medianWindow(ks)
	fmt.Printf("BENCH router live (median of %d): xdp router %.0f kpps, %.0f ns/pkt; kernel %.0f kpps, %.0f ns/pkt; xdp/kernel %.2fx the packets, the kernel %.2fx the CPU per packet\n",
		rounds, mx.pps/1e3, mx.nsPerPkt, mk.pps/1e3, mk.nsPerPkt, mx.pps/mk.pps, mk.nsPerPkt/mx.nsPerPkt)
	if ev := x.endpoint("sink").Counters.RxPackets; ev == 0 {
		t.Fatalf("aird's XDP delivered nothing to the endpoint: the router did not carry the traffic")
	}
}

type window struct {
	delivered uint64
	elapsed   time.Duration
	cpuNS     uint64 // NAPI threads' CPU time
	pps       float64
	nsPerPkt  float64
}

func (w window) String() string {
	return fmt.Sprintf("%d delivered in %s: %.0f kpps, %.0f ns/pkt", w.delivered, w.elapsed.Round(time.Millisecond), w.pps/1e3, w.nsPerPkt)
}

func medianWindow(ws []window) window {
	s := append([]window(nil), ws...)
	for i := range s { // sort by pps
		for j := i + 1; j < len(s); j++ {
			if s[j].pps < s[i].pps {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	m := s[len(s)/2]
	var ns []float64
	for _, w := range ws {
		ns = append(ns, w.nsPerPkt)
	}
	for i := range ns {
		for j := i + 1; j < len(ns); j++ {
			if ns[j] < ns[i] {
				ns[i], ns[j] = ns[j], ns[i]
			}
		}
	}
	m.nsPerPkt = ns[len(ns)/2]
	return m
}

// runWindow offers total frames as fast as the generator sends them (more
// than a node forwards: the uplink's ring overflows and the excess is
// refused before any forwarding work) and measures what the sink got, over
// the generator's time, and the NAPI threads' CPU time per frame
// delivered.
func runWindow(t *testing.T, g *generator, count func() uint64, total uint32, cpu int) window {
	t.Helper()
	before := count()
	cpuBefore := napiCPU(t)
	start := time.Now()
	g.run(t, cpu, func(send func(n uint32)) {
		for sent := uint32(0); sent < total; sent += 1 << 16 {
			send(1 << 16)
		}
	})
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond) // the queues drain
	w := window{delivered: count() - before, elapsed: elapsed, cpuNS: napiCPU(t) - cpuBefore}
	w.pps = float64(w.delivered) / w.elapsed.Seconds()
	if w.delivered > 0 {
		w.nsPerPkt = float64(w.cpuNS) / float64(w.delivered)
	}
	return w
}

// sink counts the frames a container's eth0 received.
type sink struct{ ns string }

func sinkOf(ns string) sink { return sink{ns} }

// counter is the sink's count as runWindow reads it.
func (s sink) counter(t *testing.T) func() uint64 { return func() uint64 { return sinkCount(t, s) } }

func sinkCount(t *testing.T, s sink) uint64 {
	t.Helper()
	var n uint64
	testutil.InNetns(t, s.ns, func() {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		n = l.Attrs().Statistics.RxPackets
	})
	return n
}

func linkMAC(t *testing.T, ns, dev string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	testutil.InNetns(t, ns, func() {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		mac = l.Attrs().HardwareAddr
	})
	return mac
}

// threadNAPI makes dev in ns run NAPI in a kernel thread and pins the
// NAPI threads to cpu. (The sinks keep softirq NAPI: it runs on the CPU
// that hands them a frame, right after, so it cannot be starved.)
func threadNAPI(t *testing.T, ns, dev string, cpu int) {
	t.Helper()
	testutil.NetnsExec(t, ns, "sh", "-c", "echo 1 > /sys/class/net/"+dev+"/threaded")
	time.Sleep(100 * time.Millisecond)
	for _, pid := range napiThreads(t) {
		_ = exec.Command("taskset", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(pid)).Run()
	}
}

// napiThreads returns the pids of the kernel's NAPI threads.
func napiThreads(t *testing.T) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil || !bytes.HasPrefix(b, []byte("napi/")) {
			continue
		}
		if pid, err := strconv.Atoi(strings.Split(d, "/")[2]); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// napiCPU is the CPU time of every NAPI thread (schedstat, ns).
func napiCPU(t *testing.T) uint64 {
	var sum uint64
	for _, pid := range napiThreads(t) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseUint(f[0], 10, 64)
			sum += v
		}
	}
	return sum
}

func firstTwoCPUs(t *testing.T) (int, int) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for c := 0; c < 1024 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		t.Skip("needs two CPUs")
	}
	return cpus[0], cpus[1]
}

// generator sends one frame over and over out of a veth of the generator
// namespace: an XDP program returning XDP_TX, run with live frames.
type generator struct {
	ns      string
	ifindex int
	prog    *ebpf.Program
	frame   []byte
}

func newGenerator(t *testing.T, ns, dev string, dstMAC net.HardwareAddr, dst netip.Addr) *generator {
	t.Helper()
	g := &generator{ns: ns}
	var srcMAC net.HardwareAddr
	testutil.InNetns(t, ns, func() {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		g.ifindex, srcMAC = l.Attrs().Index, l.Attrs().HardwareAddr
	})
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: net.ParseIP("fd00:1::7"), DstIP: dst.AsSlice()}
	udp := &layers.UDP{SrcPort: 4000, DstPort: 9}
	_ = udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv6}, ip, udp, gopacket.Payload(make([]byte, 2))); err != nil {
		t.Fatal(err)
	}
	g.frame = append(buf.Bytes(), make([]byte, 64-len(buf.Bytes()))...) // 64 bytes on the wire (without FCS)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
		asm.Mov.Imm(asm.R0, 3), // XDP_TX
		asm.Return(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	g.prog = prog
	return g
}

type xdpCtx struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// run calls f on a thread in the generator's namespace pinned to cpu;
// f's send transmits n frames.
func (g *generator) run(t *testing.T, cpu int, f func(send func(n uint32))) {
	t.Helper()
	testutil.InNetns(t, g.ns, func() {
		runtime.LockOSThread()
		var old, one unix.CPUSet
		_ = unix.SchedGetaffinity(0, &old)
		one.Set(cpu)
		_ = unix.SchedSetaffinity(0, &one)
		defer func() { _ = unix.SchedSetaffinity(0, &old) }()
		f(func(n uint32) {
			_, err := g.prog.Run(&ebpf.RunOptions{Data: g.frame, Repeat: n, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
				Context: xdpCtx{DataEnd: uint32(len(g.frame)), IngressIfindex: uint32(g.ifindex)}, BatchSize: g.batchSize()})
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
		})
	})
}
