package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

// XDP verdicts (enum xdp_action).
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpTx       = 3
	xdpRedirect = 4
)

// xdpMd is struct xdp_md, the BPF_PROG_TEST_RUN context: it sets the
// ingress interface the program (and bpf_fib_lookup) sees.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// The test network inside the namespace:
//
//	up0 (uplinkMAC, 2001:db8:ff::1/64, 192.0.2.1/24, MTU 1500)
//	  2001:db8:ff::fe / 192.0.2.254  gateway with a permanent neighbour gwMAC
//	  2001:db8:ff::fd                gateway without a neighbour entry
//	2001:db8:be::/48, 10.99.0.0/16   backends, via the gateway
//	2001:db8:bad::/48                backends via the gateway without neighbour
var (
	uplinkMAC = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x01}
	gwMAC     = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0xfe}
	torMAC    = net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 0x07} // sends us the client traffic

	nodeAddr6 = netip.MustParseAddr("2001:db8:ff::1")
	nodeAddr4 = netip.MustParseAddr("192.0.2.1")
)

// The tunnel sources of the test node (the load balancers' encap sources)
// and its local addresses: the VIPs it serves as a backend (on lo). Its
// underlay addresses are left out, so tunnel packets to them exercise the
// node_addrs check.
var (
	testTunnelSources = []netip.Prefix{netip.MustParsePrefix("2001:db8:5::/64"), netip.MustParsePrefix("192.0.2.64/27")}
	testLocalAddrs    = []netip.Addr{netip.MustParseAddr(served6), netip.MustParseAddr(served4)}
)

const testTableSize = 4093 // a prime: the size of programLB's tables

// bigBackendID is a backend id that needs more than the 16 bits of a
// Maglev slot: tables name backends by index, not by id.
const bigBackendID = 100_000

// lbEnv is a loaded datapath in a namespace whose FIB answers
// deterministically, plus the Go-side copy of every Maglev table.
type lbEnv struct {
	ns       string
	up, peer string // the uplink and its veth peer
	ifindex  int
	objs     *Objects
	lb       *LB   // writes the lb stage's maps
	node     *Node // writes the pipeline's maps
	settings Settings
	tables   map[uint32][]uint32   // vip id -> table, as installed now
	initial  map[uint32][]uint32   // vip id -> table, as programLB installed it
	backends map[uint32]netip.Addr // backend id -> address
}

func newLBEnv(t testing.TB) *lbEnv {
	t.Helper()
	return newLBEnvWith(t, Config{MaxVIPs: 64, MaxBackends: bigBackendID, ConntrackSize: 4096})
}

// newLBEnvWith is newLBEnv with the datapath loaded with cfg.
func newLBEnvWith(t testing.TB, cfg Config) *lbEnv {
	t.Helper()
	return newLBEnvSpec(t, cfg, nil)
}

// newLBEnvSpec is newLBEnvWith loading spec (another datapath object)
// instead of the embedded one when it is not nil.
func newLBEnvSpec(t testing.TB, cfg Config, spec *ebpf.CollectionSpec) *lbEnv {
	t.Helper()
	testutil.RequirePrivileged(t)
	ns := testutil.NewNetns(t, "lbt")
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.default.forwarding=1"} {
		testutil.NetnsExec(t, ns, "sysctl", "-q", "-w", kv)
	}
	up, peer := testutil.UniqueName("lbu"), testutil.UniqueName("lbp")
	testutil.Veth(t, up, ns, peer, ns)
	testutil.Run(t, "ip", "-n", ns, "link", "set", up, "address", uplinkMAC.String(), "mtu", "1500")
	testutil.Addr(t, ns, up, "2001:db8:ff::1/64")
	testutil.Addr(t, ns, up, "192.0.2.1/24")
	for _, args := range [][]string{
		{"neigh", "replace", "2001:db8:ff::fe", "lladdr", gwMAC.String(), "dev", up, "nud", "permanent"},
		{"neigh", "replace", "192.0.2.254", "lladdr", gwMAC.String(), "dev", up, "nud", "permanent"},
		{"-6", "route", "add", "2001:db8:be::/48", "via", "2001:db8:ff::fe", "dev", up},
		{"-6", "route", "add", "2001:db8:bad::/48", "via", "2001:db8:ff::fd", "dev", up},
		{"route", "add", "10.99.0.0/16", "via", "192.0.2.254", "dev", up},
	} {
		testutil.Run(t, "ip", append([]string{"-n", ns}, args...)...)
	}
	e := &lbEnv{ns: ns, up: up, peer: peer, tables: map[uint32][]uint32{}, backends: map[uint32]netip.Addr{}}
	testutil.InNetns(t, ns, func() {
		l, err := netlink.LinkByName(up)
		if err != nil {
			t.Fatalf("uplink: %v", err)
		}
		e.ifindex = l.Attrs().Index
	})

	objs, err := loadTestObjects(cfg, spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("verifier rejected the datapath:\n%+v", ve)
		}
		t.Fatalf("load datapath: %v", err)
	}
	t.Cleanup(func() { _ = objs.Close() })
	e.objs = objs
	e.lb = NewLB(objs.LB)
	e.node = NewNode(objs.Pipeline)
	e.settings = Settings{
		Src6:     netip.MustParsePrefix("2001:db8:5::/96"),
		Src4:     netip.MustParsePrefix("192.0.2.64/28"),
		HashSeed: 0x5eed,
	}
	e.must(t, e.node.SetSettings(e.settings))
	e.must(t, e.node.SetTunnelSources(testTunnelSources))
	return e
}

// loadTestObjects loads the embedded datapath, or spec, configured by cfg.
func loadTestObjects(cfg Config, spec *ebpf.CollectionSpec) (*Objects, error) {
	if spec == nil {
		return LoadObjects(cfg, nil)
	}
	if err := Configure(spec, cfg); err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, err
	}
	defer coll.Close()
	return NewObjects(coll)
}

// withSettings writes s for the rest of the (sub)test, then restores the
// environment's settings.
func (e *lbEnv) withSettings(t testing.TB, s Settings) {
	t.Helper()
	e.must(t, e.node.SetSettings(s))
	t.Cleanup(func() { e.must(t, e.node.SetSettings(e.settings)) })
}

// withTable installs table for vip for the rest of the (sub)test, then
// restores the one installed before.
func (e *lbEnv) withTable(t testing.TB, vip uint32, table []uint32) {
	t.Helper()
	old, had := e.tables[vip]
	e.table(t, vip, table)
	t.Cleanup(func() {
		if had {
			e.table(t, vip, old)
			return
		}
		e.must(t, e.lb.DeleteTables(vip))
		delete(e.tables, vip)
	})
}

// resetFlows forgets every tracked flow and every cached next hop, so a
// case starts from the programmed state alone.
func (e *lbEnv) resetFlows(t testing.TB) {
	t.Helper()
	ct := e.objs.LB.Conntrack
	keys := make([]uint32, ct.MaxEntries())
	for i := range keys {
		keys[i] = uint32(i)
	}
	_, err := ct.BatchUpdate(keys, make([]DatapathCtSet, len(keys)), nil)
	e.must(t, err)
	for id, a := range e.backends {
		e.must(t, e.lb.SetBackend(id, a)) // also empties its next-hop cache
	}
}

// send runs r's packet as a preparation step (e.g. the SYN that makes a
// flow established) and fails unless it was forwarded as r expects.
func (e *lbEnv) send(t testing.TB, r result) {
	t.Helper()
	verdict, out := e.run(t, r.in, true)
	if verdict == xdpDrop || verdict == xdpAborted {
		t.Fatalf("preparation packet dropped (verdict %d)", verdict)
	}
	if r.want != nil && !bytes.Equal(out, r.want) {
		t.Fatalf("preparation packet: output differs:\n got  %x\n want %x", out, r.want)
	}
}

func (e *lbEnv) must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *lbEnv) backend(t testing.TB, id uint32, addr string) {
	t.Helper()
	a := netip.MustParseAddr(addr)
	e.must(t, e.lb.SetBackend(id, a))
	e.backends[id] = a
}

// spreadTable fills a table with ids in a scrambled but deterministic
// order (the tests need a table, not Maglev's: lb/maglev builds those).
func spreadTable(ids ...uint32) []uint32 {
	t := make([]uint32, testTableSize)
	for i := range t {
		t[i] = ids[(uint64(i)*2654435761>>7)%uint64(len(ids))]
	}
	return t
}

func (e *lbEnv) table(t testing.TB, vip uint32, table []uint32) {
	t.Helper()
	e.must(t, e.lb.SetTable(vip, table))
	e.tables[vip] = table
}

// initialBackend is the backend programLB's table of vip gives flow k: the
// one a flow established before a case changed the table is tracked to.
func (e *lbEnv) initialBackend(t testing.TB, vip uint32, k DatapathFlowKey) uint32 {
	t.Helper()
	tab := e.initial[vip]
	return tab[MaglevSlot(FlowHash(&k, e.settings.HashSeed), uint32(len(tab)))]
}

// expectBackend is the Go-side choice for a new flow: hash, slot, table.
func (e *lbEnv) expectBackend(t testing.TB, vip uint32, k DatapathFlowKey) (netip.Addr, uint32, uint64) {
	t.Helper()
	h := FlowHash(&k, e.settings.HashSeed)
	tab := e.tables[vip]
	if tab == nil {
		t.Fatalf("no Go-side table for vip %d", vip)
	}
	id := tab[MaglevSlot(h, uint32(len(tab)))]
	return e.backends[id], id, h
}

// run runs the program on in inside the namespace. With ingress, the
// packet arrives on the uplink (so a next hop on the uplink means XDP_TX);
// without, on the namespace's loopback (so it means XDP_REDIRECT).
func (e *lbEnv) run(t testing.TB, in []byte, ingress bool) (uint32, []byte) {
	t.Helper()
	return e.runOn(t, firstCPU(t), in, ingress)
}

// runOn is run on CPU cpu, whose conntrack partition the packet meets.
func (e *lbEnv) runOn(t testing.TB, cpu uint32, in []byte, ingress bool) (uint32, []byte) {
	t.Helper()
	opts := &ebpf.RunOptions{Data: bytes.Clone(in), DataOut: make([]byte, len(in)+512), Repeat: 1}
	if ingress {
		opts.Context = xdpMd{DataEnd: uint32(len(in)), IngressIfindex: uint32(e.ifindex)}
	}
	var ret uint32
	var err error
	testutil.InNetns(t, e.ns, func() { onCPU(t, cpu, func() { ret, err = e.objs.Programs.XDP.Run(opts) }) })
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return ret, opts.DataOut
}

// snapshot is every counter the LB stages keep.
type snapshot struct {
	stats    map[DatapathLbStat]uint64
	drops    map[DatapathDropReason]uint64
	vips     map[uint32]DatapathCounter
	backends map[uint32]DatapathCounter
}

func sumU64(t testing.TB, m *ebpf.Map, key uint32) uint64 {
	t.Helper()
	var per []uint64
	if err := m.Lookup(&key, &per); err != nil {
		t.Fatalf("lookup %s[%d]: %v", m, key, err)
	}
	var s uint64
	for _, v := range per {
		s += v
	}
	return s
}

// pipelineCounters reads pipeline_stats summed over CPUs.
func pipelineCounters(t testing.TB, m *ebpf.Map) DatapathPipelineCounters {
	t.Helper()
	c, err := SumPipelineCounters(m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sumCounter(t testing.TB, m *ebpf.Map, key uint32) DatapathCounter {
	t.Helper()
	var per []DatapathCounter
	if err := m.Lookup(&key, &per); err != nil {
		t.Fatalf("lookup %s[%d]: %v", m, key, err)
	}
	var s DatapathCounter
	for _, v := range per {
		s.Packets += v.Packets
		s.Bytes += v.Bytes
	}
	return s
}

// sumBackendCounter is sumCounter for backend_cpu's traffic counters.
func sumBackendCounter(t testing.TB, m *ebpf.Map, key uint32) DatapathCounter {
	t.Helper()
	got, err := SumBackendTraffic(m, []uint32{key})
	if err != nil {
		t.Fatal(err)
	}
	return got[key]
}

func (e *lbEnv) snap(t testing.TB) snapshot {
	t.Helper()
	s := snapshot{stats: map[DatapathLbStat]uint64{}, drops: map[DatapathDropReason]uint64{},
		vips: map[uint32]DatapathCounter{}, backends: map[uint32]DatapathCounter{}}
	pc := pipelineCounters(t, e.objs.Pipeline.Stats)
	for _, st := range LBStats() {
		s.stats[st] = pc.Events[st]
	}
	for _, r := range DropReasons() {
		s.drops[r] = pc.Drops[r]
	}
	for vip := range e.tables {
		s.vips[vip] = sumCounter(t, e.objs.LB.VipStats, vip)
	}
	for id := range e.backends {
		s.backends[id] = sumBackendCounter(t, e.objs.LB.BackendCPU, id)
	}
	return s
}

// checkDeltas compares every LB counter's change with want; counters not
// named must not change.
func checkDeltas(t testing.TB, before, after snapshot, stats map[DatapathLbStat]uint64, drops map[DatapathDropReason]uint64) {
	t.Helper()
	var bad []string
	for st, b := range before.stats {
		if d := after.stats[st] - b; d != stats[st] {
			bad = append(bad, st.String()+": "+itoa(d)+" want "+itoa(stats[st]))
		}
	}
	for r, b := range before.drops {
		if d := after.drops[r] - b; d != drops[r] {
			bad = append(bad, "drop "+r.String()+": "+itoa(d)+" want "+itoa(drops[r]))
		}
	}
	if len(bad) > 0 {
		t.Errorf("counter deltas: %s", strings.Join(bad, "; "))
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// ipPacket serializes IP-and-above layers (no Ethernet, so no padding),
// fixing lengths and checksums.
func ipPacket(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// frame puts an Ethernet header (no padding) in front of an IP packet.
func frame(dst, src net.HardwareAddr, ip []byte) []byte {
	typ := layers.EthernetTypeIPv4
	if len(ip) > 0 && ip[0]>>4 == 6 {
		typ = layers.EthernetTypeIPv6
	}
	b := append(append(append([]byte(nil), dst...), src...), byte(typ>>8), byte(typ))
	return append(b, ip...)
}

// fromTor is a frame as the top-of-rack switch sends it to the node.
func fromTor(ip []byte) []byte { return frame(uplinkMAC, torMAC, ip) }

func ip6(src, dst string, next layers.IPProtocol, hop uint8) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: hop, NextHeader: next,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

func ip4(src, dst string, proto layers.IPProtocol, ttl uint8) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: proto, Flags: layers.IPv4DontFragment,
		Id: 0x1234, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

type tcpFlags struct{ syn, ack bool }

func tcpL(nl gopacket.NetworkLayer, sport, dport uint16, f tcpFlags) *layers.TCP {
	l := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Ack: 2000,
		SYN: f.syn, ACK: f.ack, Window: 65535, DataOffset: 5}
	_ = l.SetNetworkLayerForChecksum(nl)
	return l
}

func udpL(nl gopacket.NetworkLayer, sport, dport uint16) *layers.UDP {
	l := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = l.SetNetworkLayerForChecksum(nl)
	return l
}

// encapsulated builds the frame the LB must send for an inner IP packet
// (already with its hop limit decremented) to backend be, via the gateway.
func (e *lbEnv) encapsulated(t testing.TB, inner []byte, be netip.Addr, hash uint64, dstMAC, srcMAC net.HardwareAddr) []byte {
	t.Helper()
	innerV6 := inner[0]>>4 == 6
	var tc uint8
	if innerV6 {
		tc = uint8(binary.BigEndian.Uint32(inner)>>20) & 0xff
	} else {
		tc = inner[1]
	}
	if be.Is4() {
		outer := &layers.IPv4{Version: 4, IHL: 5, TOS: tc, Flags: layers.IPv4DontFragment, TTL: 64,
			Protocol: layers.IPProtocolIPv4, SrcIP: e.settings.OuterSource(hash, true).AsSlice(), DstIP: be.AsSlice()}
		return frame(dstMAC, srcMAC, ipPacket(t, outer, gopacket.Payload(inner)))
	}
	next := layers.IPProtocolIPv4
	if innerV6 {
		next = layers.IPProtocolIPv6
	}
	outer := &layers.IPv6{Version: 6, TrafficClass: tc, FlowLabel: uint32(hash) & 0xfffff, NextHeader: next,
		HopLimit: 64, SrcIP: e.settings.OuterSource(hash, false).AsSlice(), DstIP: be.AsSlice()}
	return frame(dstMAC, srcMAC, ipPacket(t, outer, gopacket.Payload(inner)))
}

// onFirstCPU runs f with the (locked) thread pinned to one CPU: conntrack
// is partitioned by CPU, and a flow must meet its partition again, as it
// does on a NIC where RSS keeps a flow on one queue.
func onFirstCPU(t testing.TB, f func()) {
	t.Helper()
	onCPU(t, firstCPU(t), f)
}

// onCPU runs f with the (locked) thread pinned to CPU cpu.
func onCPU(t testing.TB, cpu uint32, f func()) {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var one unix.CPUSet
	one.Set(int(cpu))
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.SchedSetaffinity(0, &set) }()
	f()
}

func netlinkByIndex(i int) (string, error) {
	l, err := netlink.LinkByIndex(i)
	if err != nil {
		return "", err
	}
	return l.Attrs().Name, nil
}

// firstCPU is the CPU onFirstCPU runs on: the first the process may use.
func firstCPU(t testing.TB) uint32 {
	t.Helper()
	return allowedCPUs(t)[0]
}

// allowedCPUs are the CPUs the process may use, in order.
func allowedCPUs(t testing.TB) []uint32 {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var cpus []uint32
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, uint32(c))
		}
	}
	if len(cpus) == 0 {
		t.Fatal("empty CPU affinity")
	}
	return cpus
}
