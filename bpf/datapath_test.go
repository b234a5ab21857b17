package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/testutil"
)

const xdpPass = 2 // enum xdp_action XDP_PASS

// loadObjects loads the embedded object into the kernel; the verifier runs
// here, so any test using it also proves the program is accepted.
func loadObjects(t *testing.T) *DatapathObjects {
	t.Helper()
	testutil.RequirePrivileged(t)
	var objs DatapathObjects
	if err := LoadDatapathObjects(&objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("verifier rejected the datapath:\n%+v", ve)
		}
		t.Fatalf("loading datapath objects: %v", err)
	}
	t.Cleanup(func() { _ = objs.Close() })
	return &objs
}

type counts map[DatapathFamily]DatapathFamilyCounter

// readCounts reads the family counters of pipeline_stats summed over CPUs.
func readCounts(t *testing.T, m *ebpf.Map) counts {
	t.Helper()
	pc := pipelineCounters(t, m)
	c := counts{}
	for _, f := range Families() {
		c[f] = pc.Family[f]
	}
	return c
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

var (
	srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	dstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
)

func eth(typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: typ}
}

func ipv4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto,
		SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 7}}
}

func ipv6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next,
		SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8:1::7")}
}

func tcp(nl gopacket.NetworkLayer) *layers.TCP {
	l := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1, SYN: true, Window: 65535}
	_ = l.SetNetworkLayerForChecksum(nl)
	return l
}

func udp(nl gopacket.NetworkLayer) *layers.UDP {
	l := &layers.UDP{SrcPort: 40000, DstPort: 53}
	_ = l.SetNetworkLayerForChecksum(nl)
	return l
}

// rawEth returns a bare Ethernet header followed by rest, without the
// padding to 60 bytes that gopacket's serializer adds.
func rawEth(typ layers.EthernetType, rest ...byte) []byte {
	b := append(append([]byte(nil), dstMAC...), srcMAC...)
	b = append(b, byte(typ>>8), byte(typ))
	return append(b, rest...)
}

func payload(n int) gopacket.Payload { return bytes.Repeat([]byte{0x5a}, n) }

// packets builds the test frames. Each is a complete Ethernet frame as XDP
// sees it (no FCS).
func packets(t testing.TB) map[string][]byte {
	t.Helper()
	p := map[string][]byte{}

	ip4 := ipv4(layers.IPProtocolTCP)
	p["ipv4 tcp"] = serialize(t, eth(layers.EthernetTypeIPv4), ip4, tcp(ip4), payload(32))
	ip4 = ipv4(layers.IPProtocolUDP)
	p["ipv4 udp"] = serialize(t, eth(layers.EthernetTypeIPv4), ip4, udp(ip4), payload(100))
	ip6 := ipv6(layers.IPProtocolTCP)
	p["ipv6 tcp"] = serialize(t, eth(layers.EthernetTypeIPv6), ip6, tcp(ip6), payload(10))
	ip6 = ipv6(layers.IPProtocolUDP)
	p["ipv6 udp"] = serialize(t, eth(layers.EthernetTypeIPv6), ip6, udp(ip6), payload(1200))

	p["arp"] = serialize(t, eth(layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: srcMAC, SourceProtAddress: []byte{192, 0, 2, 1},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 2},
	})

	ip6 = ipv6(layers.IPProtocolTCP)
	p["vlan ipv6 tcp"] = serialize(t, eth(layers.EthernetTypeDot1Q),
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv6},
		ip6, tcp(ip6), payload(20))
	ip4 = ipv4(layers.IPProtocolUDP)
	p["qinq ipv4 udp"] = serialize(t, eth(layers.EthernetTypeQinQ),
		&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeIPv4},
		ip4, udp(ip4), payload(20))
	ip4 = ipv4(layers.IPProtocolUDP)
	p["three vlan tags"] = serialize(t, eth(layers.EthernetTypeQinQ),
		&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 30, Type: layers.EthernetTypeIPv4},
		ip4, udp(ip4), payload(20))
	// A tag announced by the ethertype but cut off after two bytes.
	p["truncated vlan tag"] = rawEth(layers.EthernetTypeDot1Q, 0x00, 0x64)

	// IPv6 header cut after 20 of its 40 bytes.
	p["truncated ipv6 header"] = p["ipv6 tcp"][:14+20]
	// IPv4 header cut after 10 of its 20 bytes.
	p["truncated ipv4 header"] = p["ipv4 tcp"][:14+10]
	// Nothing after the Ethernet header.
	p["bare ethernet ipv4"] = rawEth(layers.EthernetTypeIPv4)

	bad := bytes.Clone(p["ipv4 tcp"])
	bad[14] = 0x43 // version 4, IHL 3 (< 5)
	p["ipv4 ihl 3"] = bad
	bad = bytes.Clone(p["ipv4 tcp"][:14+24])
	bad[14] = 0x4f // IHL 15 = 60 bytes, frame has 24
	p["ipv4 ihl beyond frame"] = bad
	bad = bytes.Clone(p["ipv4 tcp"])
	bad[14] = 0x65 // version 6 inside an IPv4 ethertype
	p["ipv4 wrong version"] = bad
	bad = bytes.Clone(p["ipv6 tcp"])
	bad[14] = 0x40 // version 4 inside an IPv6 ethertype
	p["ipv6 wrong version"] = bad
	bad = bytes.Clone(p["ipv4 tcp"])
	bad[16], bad[17] = 0, 10 // total length 10 < header length 20
	p["ipv4 total length below ihl"] = bad

	frag := ipv4(layers.IPProtocolUDP)
	frag.FragOffset = 185
	p["ipv4 non-first fragment"] = serialize(t, eth(layers.EthernetTypeIPv4), frag, payload(64))

	p["garbage"] = bytes.Repeat([]byte{0xa5}, 64) // ethertype 0xa5a5
	p["garbage after ipv6 ethertype"] = rawEth(layers.EthernetTypeIPv6, bytes.Repeat([]byte{0xff}, 50)...)
	p["runt ethernet"] = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	return p
}

func TestProgramLoads(t *testing.T) {
	objs := loadObjects(t)
	if typ := objs.AirdXdp.Type(); typ != ebpf.XDP {
		t.Fatalf("program type = %s, want XDP", typ)
	}
	info, err := objs.PipelineStats.Info()
	if err != nil {
		t.Fatalf("pipeline_stats info: %v", err)
	}
	if info.Type != ebpf.PerCPUArray || info.MaxEntries != 1 ||
		info.ValueSize != uint32(binary.Size(DatapathPipelineCounters{})) {
		t.Fatalf("pipeline_stats = %s with %d entries of %d bytes, want PerCPUArray with one DatapathPipelineCounters",
			info.Type, info.MaxEntries, info.ValueSize)
	}
}

func TestPipelineCountsByFamily(t *testing.T) {
	objs := loadObjects(t)
	pkts := packets(t)

	for _, tc := range []struct {
		name   string
		family DatapathFamily
		// runErr: the kernel refuses to run the program on the frame at
		// all (BPF_PROG_TEST_RUN needs at least ETH_HLEN bytes, as does
		// every real receive path), so nothing may be counted.
		runErr error
	}{
		{name: "ipv4 tcp", family: DatapathFamilyFAMILY_IPV4},
		{name: "ipv4 udp", family: DatapathFamilyFAMILY_IPV4},
		{name: "ipv6 tcp", family: DatapathFamilyFAMILY_IPV6},
		{name: "ipv6 udp", family: DatapathFamilyFAMILY_IPV6},
		{name: "arp", family: DatapathFamilyFAMILY_OTHER},
		{name: "vlan ipv6 tcp", family: DatapathFamilyFAMILY_IPV6},
		{name: "qinq ipv4 udp", family: DatapathFamilyFAMILY_IPV4},
		{name: "three vlan tags", family: DatapathFamilyFAMILY_OTHER},
		{name: "truncated vlan tag", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "truncated ipv6 header", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "truncated ipv4 header", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "bare ethernet ipv4", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "ipv4 ihl 3", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "ipv4 ihl beyond frame", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "ipv4 wrong version", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "ipv6 wrong version", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "ipv4 total length below ihl", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "ipv4 non-first fragment", family: DatapathFamilyFAMILY_IPV4},
		{name: "garbage", family: DatapathFamilyFAMILY_OTHER},
		{name: "garbage after ipv6 ethertype", family: DatapathFamilyFAMILY_MALFORMED},
		{name: "runt ethernet", runErr: unix.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, ok := pkts[tc.name]
			if !ok {
				t.Fatalf("no packet named %q", tc.name)
			}
			before := readCounts(t, objs.PipelineStats)

			opts := &ebpf.RunOptions{Data: bytes.Clone(in), DataOut: make([]byte, len(in)+256), Repeat: 1}
			ret, err := objs.AirdXdp.Run(opts)
			after := readCounts(t, objs.PipelineStats)

			want := counts{}
			for f, c := range before {
				want[f] = c
			}
			if tc.runErr != nil {
				if !errors.Is(err, tc.runErr) {
					t.Fatalf("run: err = %v, want %v", err, tc.runErr)
				}
			} else {
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if ret != xdpPass {
					t.Errorf("verdict = %d, want XDP_PASS (%d)", ret, xdpPass)
				}
				// Run truncates DataOut to the frame the program left.
				if !bytes.Equal(opts.DataOut, in) {
					t.Errorf("packet modified:\n in  %x\n out %x", in, opts.DataOut)
				}
				c := want[tc.family]
				c.Packets++
				c.Bytes += uint64(len(in))
				want[tc.family] = c
			}
			for _, f := range Families() {
				if after[f] != want[f] {
					t.Errorf("%s: counter = %+v, want %+v (before %+v)", f, after[f], want[f], before[f])
				}
			}
		})
	}
}

// TestPipelineSurvivesRandomFrames runs random bytes of random length through
// the program: it must always pass them unmodified and count each exactly
// once.
func TestPipelineSurvivesRandomFrames(t *testing.T) {
	objs := loadObjects(t)
	rng := rand.New(rand.NewPCG(1, 2))
	ethertypes := [][2]byte{{0x08, 0x00}, {0x86, 0xdd}, {0x81, 0x00}, {0x88, 0xa8}, {0x12, 0x34}}

	before := readCounts(t, objs.PipelineStats)
	const n = 300
	var bytesIn uint64
	for i := range n {
		in := make([]byte, 14+rng.IntN(120))
		for j := range in {
			in[j] = byte(rng.Uint32())
		}
		et := ethertypes[rng.IntN(len(ethertypes))]
		in[12], in[13] = et[0], et[1]
		if len(in) > 18 && rng.IntN(2) == 0 { // a plausible version nibble
			in[14+rng.IntN(5)] = []byte{0x45, 0x60, 0x08, 0x86}[rng.IntN(4)]
		}
		opts := &ebpf.RunOptions{Data: bytes.Clone(in), DataOut: make([]byte, len(in)+256), Repeat: 1}
		ret, err := objs.AirdXdp.Run(opts)
		if err != nil {
			t.Fatalf("frame %d (%x): run: %v", i, in, err)
		}
		if ret != xdpPass || !bytes.Equal(opts.DataOut, in) {
			t.Fatalf("frame %d (%x): verdict %d, out %x", i, in, ret, opts.DataOut)
		}
		bytesIn += uint64(len(in))
	}
	after := readCounts(t, objs.PipelineStats)
	var dp, db uint64
	for _, f := range Families() {
		dp += after[f].Packets - before[f].Packets
		db += after[f].Bytes - before[f].Bytes
	}
	if dp != n || db != bytesIn {
		t.Fatalf("counted %d packets / %d bytes, want %d / %d", dp, db, n, bytesIn)
	}
}

func TestFamilyNames(t *testing.T) {
	want := []string{"ipv4", "ipv6", "other", "malformed"}
	fams := Families()
	if len(fams) != len(want) {
		t.Fatalf("Families() = %v, want %d families", fams, len(want))
	}
	for i, f := range fams {
		if f.String() != want[i] {
			t.Errorf("family %d = %q, want %q", i, f.String(), want[i])
		}
	}
}
