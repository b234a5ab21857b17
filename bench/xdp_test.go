package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
	"github.com/aird-net/aird/lb"
)

// Environment knobs (bench/xdp.sh and bench/ct-layouts.sh set them):
//
//	AIRD_BENCH_OBJECT   load this datapath object instead of the embedded
//	                    one (conntrack layout variants)
//	AIRD_BENCH_CT_SIZE  conntrack size (default 1<<20, the config default)
const (
	envObject = "AIRD_BENCH_OBJECT"
	envCTSize = "AIRD_BENCH_CT_SIZE"
)

const nBackends = 100

var gwMAC = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0xfe}

type env struct {
	ns       string
	ifindex  int // the uplink: packets arrive here and leave by XDP_TX
	coll     *ebpf.Collection
	prog     *ebpf.Program
	floor    *FloorObjects
	lbm      *lb.Manager
	ct       *ebpf.Map
	ctShare  int // conntrack entries one CPU may fill
	inserted int // new flows since the last conntrack reset
	node     *bpf.Node
	lbMaps   bpf.LBMaps
}

func ctSize(b testing.TB) uint32 {
	v := os.Getenv(envCTSize)
	if v == "" {
		return 1 << 20
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		b.Fatalf("%s: %v", envCTSize, err)
	}
	return uint32(n)
}

// newEnv loads the datapath with nVIPs VIPs (vip6(i):443/tcp, vip id i),
// all sharing one Maglev table over 100 IPv6 backends, in a namespace
// whose FIB reaches the backends through a gateway with a static
// neighbour.
func newEnv(b testing.TB, nVIPs int) *env {
	b.Helper()
	ns, ifindex := newBenchNS(b)
	return newEnvIn(b, ns, ifindex, nVIPs)
}

// newBenchNS creates the namespace: an uplink whose FIB reaches the
// backends through a gateway with a static neighbour.
func newBenchNS(b testing.TB) (ns string, ifindex int) {
	b.Helper()
	testutil.RequirePrivileged(b)
	ns = testutil.NewNetns(b, "bnch")
	testutil.NetnsExec(b, ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	up, peer := testutil.UniqueName("bu"), testutil.UniqueName("bp")
	testutil.Veth(b, up, ns, peer, ns)
	testutil.Addr(b, ns, up, "2001:db8:ff::1/64")
	testutil.Run(b, "ip", "-n", ns, "neigh", "replace", "2001:db8:ff::fe", "lladdr", gwMAC.String(), "dev", up, "nud", "permanent")
	testutil.Run(b, "ip", "-n", ns, "-6", "route", "add", "2001:db8:be::/48", "via", "2001:db8:ff::fe", "dev", up)
	testutil.InNetns(b, ns, func() {
		l, err := netlink.LinkByName(up)
		if err != nil {
			b.Fatalf("uplink: %v", err)
		}
		ifindex = l.Attrs().Index
	})
	return ns, ifindex
}

// newEnvIn loads a datapath with nVIPs VIPs for the uplink ifindex of ns.
func newEnvIn(b testing.TB, ns string, ifindex int, nVIPs int, protos ...string) *env {
	b.Helper()
	return newEnvWith(b, ns, ifindex, nVIPs, envOptions{}, protos...)
}

// envOptions are what a bench changes in the datapath before loading it.
type envOptions struct {
	// ctCPUs partitions conntrack as if the machine had this many
	// possible CPUs (0: the machine's own; see partitionCT).
	ctCPUs int
	// anyCPU lists the uplink as a link whose flows may come from any
	// CPU (veth, tap: the cross-CPU conntrack steps run). By default it
	// is listed as what a node's uplink is, a NIC whose RSS keeps a flow
	// on one CPU (UPLINK_F_FLOW_AFFINE).
	anyCPU bool
	// object loads this BPF object instead of the tree's (or
	// AIRD_BENCH_OBJECT's).
	object string
}

// newEnvWith is newEnvIn with the datapath changed by o.
func newEnvWith(b testing.TB, ns string, ifindex int, nVIPs int, o envOptions, protos ...string) *env {
	b.Helper()

	size := ctSize(b)
	var spec *ebpf.CollectionSpec
	var err error
	path := os.Getenv(envObject)
	if o.object != "" {
		path = o.object
	}
	if path != "" {
		spec, err = ebpf.LoadCollectionSpec(path)
		if err == nil {
			olderBackendMaps(spec)
			err = bpf.Configure(spec, bpf.Config{ConntrackSize: size})
		}
	} else {
		spec, err = bpf.LoadSpecWith(bpf.Config{ConntrackSize: size})
	}
	if err != nil {
		b.Fatalf("datapath spec: %v", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		b.Fatal(err)
	}
	if o.ctCPUs > 0 {
		partitionCT(b, spec, size, o.ctCPUs)
		ncpu = o.ctCPUs
	}
	perCPUMaps := spec.Maps[bpf.ConntrackMapName(spec)].Type == ebpf.ArrayOfMaps
	if perCPUMaps {
		spec.Maps[bpf.ConntrackMapName(spec)].InnerMap.MaxEntries = size / uint32(ncpu)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			b.Fatalf("verifier: %+v", ve)
		}
		b.Fatalf("load datapath: %v", err)
	}
	b.Cleanup(coll.Close)
	e := &env{ns: ns, ifindex: ifindex, coll: coll, prog: coll.Programs[bpf.ProgramXDP], ct: coll.Maps[bpf.ConntrackMapName(spec)]}
	e.ctShare = int(size) / ncpu
	if perCPUMaps {
		for cpu := 0; cpu < ncpu; cpu++ {
			inner, err := ebpf.NewMap(spec.Maps[bpf.ConntrackMapName(spec)].InnerMap)
			if err != nil {
				b.Fatalf("per-CPU conntrack: %v", err)
			}
			err = e.ct.Put(uint32(cpu), inner)
			inner.Close()
			if err != nil {
				b.Fatalf("per-CPU conntrack: %v", err)
			}
		}
	}
	var floor FloorObjects
	if err := LoadFloorObjects(&floor, nil); err != nil {
		b.Fatalf("load floor: %v", err)
	}
	b.Cleanup(func() { _ = floor.Close() })
	e.floor = &floor

	other := path != "" // an older object may lack some maps
	maps := lenientView(b, coll, bpf.ViewLB, other)
	if other {
		adoptOlderSets(coll, &maps)
	}
	e.node, e.lbMaps = bpf.NewNode(lenientView(b, coll, bpf.ViewPipeline, other)), maps
	must(b, e.node.SetSettings(bpf.Settings{Src6: netip.MustParsePrefix("2001:db8:5::/96")}))
	must(b, e.node.SetUplinks([]bpf.Uplink{{Ifindex: ifindex, FlowAffine: !o.anyCPU}}))
	if nVIPs > 0 {
		if len(protos) == 0 {
			protos = []string{"tcp"}
		}
		e.program(b, maps, nVIPs, protos...)
	}
	return e
}

// program configures nVIPs services (vipAddr(v):443 over protos) over the same 100
// IPv6 backends through the control plane the daemon runs (lb.Manager and
// lb.Programmer): one shared Maglev table, sized for 100 backends.
func (e *env) program(b testing.TB, maps bpf.LBMaps, nVIPs int, protos ...string) {
	b.Helper()
	m := newManager(b, maps)
	e.lbm = m
	backends := make([]lb.Backend, nBackends)
	for i := range backends {
		backends[i] = lb.Backend{Address: netip.MustParseAddr(fmt.Sprintf("2001:db8:be::%x", i+1)), Weight: 100}
	}
	var services []lb.Service
	for _, proto := range protos {
		for v := range nVIPs {
			services = append(services, lb.Service{Name: fmt.Sprintf("vip%d-%s", v, proto), VIP: vipAddr(v), Port: 443, Protocol: proto,
				Backends: backends, HealthCheck: lb.HealthCheck{Type: "none"}})
		}
	}
	must(b, m.Apply(lb.Config{Services: services}))
}

// newManager is the load balancer's control plane writing maps, quiet
// (its log lines would split the benchmark's result lines).
func newManager(b testing.TB, maps bpf.LBMaps) *lb.Manager {
	m, err := lb.New(context.Background(), lb.Options{OnServing: func([]netip.Addr) {}, Dataplane: lb.NewProgrammer(maps, lb.ProgrammerOptions{Logger: slog.New(slog.DiscardHandler)}),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return m
}

// lenientView returns a map set of coll (bpf.ViewLB, bpf.ViewPipeline).
// An older object (other: loaded through AIRD_BENCH_OBJECT - bench/decap.sh
// measures the one before the tunnel checks - or AIRD_BENCH_AB) may lack
// some maps; those stay nil.
func lenientView[T any](b testing.TB, coll *ebpf.Collection, view func(*ebpf.Collection) (T, error), other bool) T {
	m, err := view(coll)
	if err == nil {
		return m
	}
	if !other {
		b.Fatal(err)
	}
	v := reflect.ValueOf(&m).Elem()
	for i := range v.NumField() {
		if mm := coll.Maps[v.Type().Field(i).Tag.Get("ebpf")]; mm != nil {
			v.Field(i).Set(reflect.ValueOf(mm))
		}
	}
	return m
}

func must(b testing.TB, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

func vipAddr(i int) netip.Addr {
	a := netip.MustParseAddr("2001:db8:100::").As16()
	binary.BigEndian.PutUint32(a[12:], uint32(i))
	return netip.AddrFrom16(a)
}

// Offsets into the 74-byte IPv6/TCP frame.
const (
	offSrcLow = 14 + 8 + 12  // last 4 bytes of the source address
	offDstLow = 14 + 24 + 12 // last 4 bytes of the destination address
	offSport  = 14 + 40
)

// template is a 74-byte IPv6 TCP frame (no payload) client -> vip 0:443.
func template(b testing.TB, syn bool) []byte {
	l3 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
		SrcIP: net.ParseIP("2001:db8:c0::"), DstIP: vipAddr(0).AsSlice()}
	l4 := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1, Ack: 1, SYN: syn, ACK: !syn, Window: 65535}
	_ = l4.SetNetworkLayerForChecksum(l3)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
			EthernetType: layers.EthernetTypeIPv6}, l3, l4)
	if err != nil {
		b.Fatal(err)
	}
	if len(buf.Bytes()) != 74 {
		b.Fatalf("template is %d bytes, want 74", len(buf.Bytes()))
	}
	return append([]byte(nil), buf.Bytes()...)
}

// setFlow makes pkt flow n (source address and port) to VIP v.
func setFlow(pkt []byte, n uint32, v int) {
	binary.BigEndian.PutUint32(pkt[offSrcLow:], n>>12+1)
	binary.BigEndian.PutUint16(pkt[offSport:], uint16(1024+n&0xfff))
	binary.BigEndian.PutUint32(pkt[offDstLow:], uint32(v))
}

// testRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr.
type testRunAttr struct {
	progFD, retval, dataSizeIn, dataSizeOut uint32
	dataIn, dataOut                         uint64
	repeat, duration                        uint32
	ctxSizeIn, ctxSizeOut                   uint32
	ctxIn, ctxOut                           uint64
	flags, cpu, batchSize                   uint32
	_                                       uint32
}

// xdpMd is struct xdp_md: the ingress interface the program sees.
type xdpMd struct {
	data, dataEnd, dataMeta, ingressIfindex, rxQueueIndex, egressIfindex uint32
}

const bpfProgTestRun = 10

// runOnce runs prog once (repeat 1) on a copy of pkt arriving on ifindex
// and returns the kernel-measured duration. cilium/ebpf's Benchmark has no
// context, so this is the raw syscall.
func runOnce(b testing.TB, prog *ebpf.Program, pkt []byte, ifindex int, want uint32) time.Duration {
	verdict, d, _ := testRun(b, prog, pkt, nil, ifindex)
	if verdict != want {
		b.Fatalf("verdict %d, want %d", verdict, want)
	}
	return d
}

// testRun runs prog once (repeat 1) on a copy of pkt arriving on ifindex
// and returns the verdict, the kernel-measured duration and, when out is
// not nil, the output frame in out.
func testRun(b testing.TB, prog *ebpf.Program, pkt, out []byte, ifindex int) (uint32, time.Duration, []byte) {
	return testRunN(b, prog, pkt, out, ifindex, 1)
}

// testRunN is testRun with repeat runs (BPF_PROG_TEST_RUN does not restore
// the packet between them; the duration is per run).
func testRunN(b testing.TB, prog *ebpf.Program, pkt, out []byte, ifindex, repeat int) (uint32, time.Duration, []byte) {
	ctx := xdpMd{dataEnd: uint32(len(pkt)), ingressIfindex: uint32(ifindex)}
	attr := testRunAttr{
		progFD:     uint32(prog.FD()),
		dataSizeIn: uint32(len(pkt)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&pkt[0]))),
		repeat:     uint32(repeat),
		ctxSizeIn:  uint32(unsafe.Sizeof(ctx)),
		ctxIn:      uint64(uintptr(unsafe.Pointer(&ctx))),
	}
	if out != nil {
		attr.dataSizeOut = uint32(len(out))
		attr.dataOut = uint64(uintptr(unsafe.Pointer(&out[0])))
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgTestRun, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(pkt)
		runtime.KeepAlive(out)
		runtime.KeepAlive(&ctx)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			b.Fatalf("BPF_PROG_TEST_RUN on %x: %v", pkt, errno)
		}
		break
	}
	if out != nil {
		out = out[:attr.dataSizeOut]
	}
	return attr.retval, time.Duration(attr.duration), out
}

const xdpTx = 3

// inNetns runs f pinned to one CPU inside the namespace: the FIB lookups
// see its routes, and per-CPU conntrack shares stay predictable.
func inNetns(b testing.TB, ns string, f func()) { onCPU(b, ns, 0, f) }

// onCPU runs f on the nth CPU the process may use, inside the namespace.
func onCPU(b testing.TB, ns string, nth int, f func()) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		b.Fatal(err)
	}
	var one unix.CPUSet
	for c, seen := 0, 0; c < 1024; c++ {
		if set.IsSet(c) {
			if seen == nth {
				one.Set(c)
				break
			}
			seen++
		}
	}
	if one.Count() != 1 {
		b.Fatalf("no CPU number %d in the affinity mask", nth)
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = unix.SchedSetaffinity(0, &set) }()
	orig, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = netns.Set(orig) }()
	f()
}

// resetCT empties conntrack so new flows never meet a full table.
func (e *env) resetCT(b testing.TB) {
	b.Helper()
	if e.ct.Type() == ebpf.ArrayOfMaps {
		for cpu := uint32(0); cpu < e.ct.MaxEntries(); cpu++ {
			var id ebpf.MapID
			if err := e.ct.Lookup(cpu, &id); err != nil {
				continue
			}
			inner, err := ebpf.NewMapFromID(id)
			if err != nil {
				b.Fatal(err)
			}
			clearMap(b, inner)
			inner.Close()
		}
	} else if e.ct.Type() == ebpf.Array {
		zeroArray(b, e.ct)
	} else {
		clearMap(b, e.ct)
	}
	e.inserted = 0
}

// zeroArray empties a set-associative conntrack (an ARRAY).
func zeroArray(b testing.TB, m *ebpf.Map) {
	const chunk = 4096
	if m.ValueSize() != 256 {
		b.Fatalf("conntrack set of %d bytes", m.ValueSize())
	}
	keys := make([]uint32, chunk)
	vals := make([][256]byte, chunk)
	for start := uint32(0); start < m.MaxEntries(); start += chunk {
		n := min(chunk, m.MaxEntries()-start)
		for i := range keys[:n] {
			keys[i] = start + uint32(i)
		}
		if _, err := m.BatchUpdate(keys[:n], vals[:n], nil); err != nil {
			b.Fatalf("zero conntrack: %v", err)
		}
	}
}

func clearMap(b testing.TB, m *ebpf.Map) {
	var keys []bpf.DatapathFlowKey
	var k bpf.DatapathFlowKey
	var v []byte
	it := m.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		b.Fatalf("iterate conntrack: %v", err)
	}
	for _, k := range keys {
		_ = m.Delete(&k)
	}
}

// samples are kernel-measured run times of one program, in ns.
type samples []float64

// stats returns the median and the 10 % trimmed mean. The kernel reports
// a single run's time in steps of about 10 ns, 8 % of the floor program's
// ~120 ns: a median jumps by whole steps between runs, while the trimmed
// mean resolves between them and still drops interrupted runs.
func (s samples) stats() (median, trimmed float64) {
	c := slices.Clone(s)
	slices.Sort(c)
	cut := len(c) / 10
	var sum float64
	for _, v := range c[cut : len(c)-cut] {
		sum += v
	}
	return c[len(c)/2], sum / float64(len(c)-2*cut)
}

// result is one measurement: the LB's and the floor's run times, taken
// alternately.
type result struct{ lb, floor samples }

func (r *result) add(lb, floor time.Duration) {
	r.lb = append(r.lb, float64(lb))
	r.floor = append(r.floor, float64(floor))
}

// report publishes trimmed means (ns/pkt, floor-ns/pkt and their ratio
// x-floor, which bench/xdp.sh summarises) and the medians.
func (r *result) report(b *testing.B) {
	lbMed, lbTrim := r.lb.stats()
	flMed, flTrim := r.floor.stats()
	b.ReportMetric(lbTrim, "ns/pkt")
	b.ReportMetric(flTrim, "floor-ns/pkt")
	b.ReportMetric(lbTrim/flTrim, "x-floor")
	b.ReportMetric(lbMed/flMed, "x-floor-median")
	b.ReportMetric(0, "ns/op") // the syscall-inclusive wall time is not the metric
}

// measure runs the floor and the LB alternately, once each per iteration,
// on fresh copies of their packets (BPF_PROG_TEST_RUN with repeat 1:
// every run sees the original packet), and records the kernel-reported
// times.
func measure(b *testing.B, e *env, next func(i int) []byte, want uint32) *result {
	floorPkt := template(b, false)
	r := &result{}
	inNetns(b, e.ns, func() {
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			pkt := next(i)
			fl := runOnce(b, e.floor.FloorXdp, floorPkt, e.ifindex, xdpTx)
			r.add(runOnce(b, e.prog, pkt, e.ifindex, want), fl)
		}
	})
	return r
}

var vipCounts = []int{1, 100, 1000, 10000}

// BenchmarkEstablished: an ACK of a tracked flow (conntrack hit) to one VIP
// (the middle one) while vips VIPs are configured: the cost of the VIP
// count alone.
func BenchmarkEstablished(b *testing.B) {
	for _, nv := range vipCounts {
		b.Run(fmt.Sprintf("vips=%d", nv), func(b *testing.B) { established(b, nv, false) })
	}
}

// BenchmarkEstablishedSpread: like BenchmarkEstablished, but the packets
// go round-robin to all VIPs, one tracked flow each: the working set grows
// with the VIP count (informational).
func BenchmarkEstablishedSpread(b *testing.B) {
	for _, nv := range vipCounts {
		b.Run(fmt.Sprintf("vips=%d", nv), func(b *testing.B) { established(b, nv, true) })
	}
}

func established(b *testing.B, nv int, spread bool) {
	e := newEnv(b, nv)
	vips := []int{nv / 2}
	if spread {
		vips = make([]int, nv)
		for v := range vips {
			vips[v] = v
		}
	}
	pkts := make([][]byte, len(vips))
	inNetns(b, e.ns, func() {
		for i, v := range vips {
			track(b, e, 0, v)
			pkts[i] = template(b, false)
			setFlow(pkts[i], 0, v)
		}
	})
	measure(b, e, func(i int) []byte { return pkts[i%len(pkts)] }, xdpTx).report(b)
}

// track makes flow n to VIP v established in conntrack: its SYN, the
// handshake's ACK (tracked: a new entry) and one more packet (established).
// Run it inside inNetns.
func track(b testing.TB, e *env, n uint32, v int) {
	syn, ack := template(b, true), template(b, false)
	setFlow(syn, n, v)
	setFlow(ack, n, v)
	runOnce(b, e.prog, syn, e.ifindex, xdpTx)
	runOnce(b, e.prog, ack, e.ifindex, xdpTx)
	runOnce(b, e.prog, ack, e.ifindex, xdpTx)
}

// BenchmarkNewFlow: a TCP SYN of a flow never seen to one VIP (the middle
// one) while vips VIPs are configured: the Maglev table decides, conntrack
// is looked up for a reused tuple and nothing is written.
func BenchmarkNewFlow(b *testing.B) {
	for _, nv := range vipCounts {
		b.Run(fmt.Sprintf("vips=%d", nv), func(b *testing.B) {
			e := newEnv(b, nv)
			newFlows(b, e, func(uint32) int { return nv / 2 }, startSYN)
		})
	}
}

// BenchmarkNewFlowSpread: like BenchmarkNewFlow, the flows round-robin
// over all VIPs (informational).
func BenchmarkNewFlowSpread(b *testing.B) {
	for _, nv := range vipCounts {
		b.Run(fmt.Sprintf("vips=%d", nv), func(b *testing.B) {
			e := newEnv(b, nv)
			newFlows(b, e, func(f uint32) int { return int(f) % nv }, startSYN)
		})
	}
}

// BenchmarkNewFlowACK: the handshake's ACK of a new flow (its SYN went
// before, outside the measurement): a conntrack miss and the insert that
// tracks the flow.
func BenchmarkNewFlowACK(b *testing.B) {
	e := newEnv(b, 1)
	newFlows(b, e, func(uint32) int { return 0 }, startACK)
}

// BenchmarkNewFlowUDP: like BenchmarkNewFlow with a first UDP datagram,
// which pays a conntrack lookup (miss) before the insert.
func BenchmarkNewFlowUDP(b *testing.B) {
	ns, ifindex := newBenchNS(b)
	e := newEnvIn(b, ns, ifindex, 1, "udp")
	newFlows(b, e, func(uint32) int { return 0 }, startUDP)
}

// The first packets of a new flow newFlows measures.
type flowStart int

const (
	startSYN flowStart = iota // a TCP SYN
	startACK                  // the handshake's ACK (after the unmeasured SYN)
	startUDP                  // a first UDP datagram
)

// newFlows sends a new flow per iteration to the VIP vipOf(flow) picks
// and measures its first packet of kind k. Conntrack is emptied outside
// the measurement long before a CPU's share could fill.
func newFlows(b *testing.B, e *env, vipOf func(flow uint32) int, k flowStart) {
	pkt := template(b, k == startSYN)
	syn := template(b, true)
	if k == startUDP {
		pkt[14+6] = 17 // UDP: the ports are where TCP's are
	}
	limit := e.ctShare / 4
	var flow uint32
	r := &result{}
	floorPkt := template(b, false)
	e.resetCT(b)
	inNetns(b, e.ns, func() {
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if e.inserted >= limit {
				b.StopTimer()
				e.resetCT(b)
				b.StartTimer()
			}
			flow++
			setFlow(pkt, flow, vipOf(flow))
			if k == startACK {
				setFlow(syn, flow, vipOf(flow))
				runOnce(b, e.prog, syn, e.ifindex, xdpTx)
			}
			fl := runOnce(b, e.floor.FloorXdp, floorPkt, e.ifindex, xdpTx)
			r.add(runOnce(b, e.prog, pkt, e.ifindex, xdpTx), fl)
			e.inserted++
		}
	})
	r.report(b)
}

// BenchmarkNewFlowParallel: new TCP flows on every CPU at once, each CPU
// its own flows, measured on the handshake's ACK (the SYN goes before,
// unmeasured): shows contention in the conntrack insert (shared LRU
// lists, bucket locks). Reported numbers are over all CPUs' samples.
func BenchmarkNewFlowParallel(b *testing.B) {
	e := newEnv(b, 1)
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		b.Fatal(err)
	}
	ncpu := set.Count()
	if b.N/ncpu >= e.ctShare/4 {
		b.Fatalf("b.N %d would fill a CPU's conntrack share of %d", b.N, e.ctShare)
	}
	e.resetCT(b)
	results := make([]*result, ncpu)
	var wg sync.WaitGroup
	b.ResetTimer()
	for c := range ncpu {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &result{}
			results[c] = r
			syn, pkt := template(b, true), template(b, false)
			floorPkt := template(b, false)
			onCPU(b, e.ns, c, func() {
				for i := c; i < b.N; i += ncpu {
					setFlow(syn, uint32(i+1), 0)
					runOnce(b, e.prog, syn, e.ifindex, xdpTx)
					setFlow(pkt, uint32(i+1), 0)
					fl := runOnce(b, e.floor.FloorXdp, floorPkt, e.ifindex, xdpTx)
					r.add(runOnce(b, e.prog, pkt, e.ifindex, xdpTx), fl)
				}
			})
		}()
	}
	wg.Wait()
	all := &result{}
	for _, r := range results {
		all.lb = append(all.lb, r.lb...)
		all.floor = append(all.floor, r.floor...)
	}
	all.report(b)
}
